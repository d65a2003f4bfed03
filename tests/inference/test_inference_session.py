"""`booktune chat` asks as training asked: the answer task's user-turn form around the user's text."""

from booktune.inference.session import user_turn


def test_chat_wraps_the_message_in_the_trained_answer_form():
    meta = {"answer_prompt": "A question for Henry David Thoreau: {question}"}
    assert user_turn(meta, "Why {did} you go?") == {
        "role": "user", "content": "A question for Henry David Thoreau: Why {did} you go?"}
    assert user_turn({}, "Go on: the pond")["content"] == "Go on: the pond"  # continuations only: as typed
