"""How much the sampled figures of one trained run move from one sampling draw to the next: held-out prompts
continued and held-out questions answered by the base and the tuned model with several seeds, and the figures of
`booktune run` for each (voice distance of the continuations; Delta of the answers to the author's training text,
their attribution, answers ended at end of turn). Not part of the package.

    booktune run examples/books --out outputs/demo
    python dev/answer_spread.py outputs/demo/run --questions 16 --seeds 42 1 2 --out /tmp/spread16.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--questions", type=int, default=16, help="held-out prompts continued and questions answered "
                                                              "per draw")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from booktune.config import EvalConfig
    from booktune.dataset import load_conversations
    from booktune.evaluation.heldout import answers, voice
    from booktune.inference.session import load_run_model

    model, tokenizer, meta = load_run_model(args.run)  # as `booktune chat` loads it: the run's base and adapter
    data_dir = Path(meta["data_dir"])
    e = EvalConfig(**{**meta["config"]["eval"], "voice_prompts": args.questions, "answer_questions": args.questions})
    held, train = load_conversations(data_dir, "eval"), load_conversations(data_dir, "train")
    draws = []
    for seed in args.seeds:
        started = time.perf_counter()
        _, continued = voice(model, tokenizer, held, e, seed=seed)
        report = answers(model, tokenizer, held, train, e, seed=seed)
        report.pop("samples")
        draws.append({"seed": seed, "seconds": round(time.perf_counter() - started, 1), **report,
                      "voice": {k: continued[k] for k in ("prompts", "delta_base", "delta_tuned")}})
        args.out.write_text(json.dumps(draws, indent=1))
    print(f"continuations: Delta base {[round(d['voice']['delta_base'], 3) for d in draws]}, "
          f"tuned {[round(d['voice']['delta_tuned'], 3) for d in draws]}")
    for key in ("base", "tuned"):
        print(f"{key}: Delta {[round(d['delta'][key], 3) for d in draws]}, "
              f"attribution {[d['attribution'][key] for d in draws]}")
    cut = [1 - d["delta"]["tuned"] / d["delta"]["base"] for d in draws]
    print(f"tuned closer than base by {[f'{c:.1%}' for c in cut]} (mean {statistics.fmean(cut):.1%})")


if __name__ == "__main__":
    main()
