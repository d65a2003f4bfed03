"""Chat templates and the labels: how a conversation becomes the tokens a model trains on and generates from.

- render.py: the template's text, reproducibly (dates pinned, thinking off where the template has the switch,
  empty tools where a tool-use template needs them; `{% generation %}` tags parsed);
- locate.py: where each answer and its end-of-turn marker sit in the tokens;
- generation.py: the template's `{% generation %}` blocks, a second check of those answer spans;
- messages.py: template quirks shared by training and generation (system folding, the generation prompt, stops);
- labels.py: `build_example`, the one function that makes `input_ids` + `labels`;
- preview.py: the red/green view of those labels (`booktune preview`);
- unsloth.py: the instruction/response parts for Unsloth's `train_on_responses_only`, read off the template.

Used by dataset, training, evaluation and inference; imports nothing from them.
"""

from booktune.template.labels import IGNORE, MaskingError, TokenizedExample, build_example
from booktune.template.messages import prepare_messages, render_prompt_ids, stop_token_ids
from booktune.template.preview import mask_summary, render_preview
from booktune.template.render import TemplateError

__all__ = ["IGNORE", "MaskingError", "TemplateError", "TokenizedExample", "build_example", "mask_summary",
           "prepare_messages", "render_preview", "render_prompt_ids", "stop_token_ids"]
