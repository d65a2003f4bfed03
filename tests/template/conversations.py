"""The two-turn conversation the chat tests render with every template: two answers, so both the middle and the
last end-of-turn marker are checked."""

CONVERSATION = [
    {"role": "system", "content": "You write like Thoreau."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello there."},
    {"role": "user", "content": "And?"},
    {"role": "assistant", "content": "Goodbye."},
]
