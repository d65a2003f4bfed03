"""Generation: replies prompted as training conditioned them (generate.py), and talking to a trained run
(session.py, the `booktune chat` command)."""
