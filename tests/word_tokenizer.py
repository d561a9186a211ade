"""A whitespace tokenizer for fast rendering tests (the slice of the Hugging Face API `workloads/render.py` uses)."""


class WordTokenizer:
    """A test double with the slice of the Hugging Face tokenizer API that `render.py` uses.

    One id per whitespace-separated word; `[BOS]` is id 1 when special tokens are requested. With
    `chat_template` set it renders turns as `<role> content` lines plus an assistant cue.
    """

    def __init__(self, chat_template=None):
        self.chat_template = chat_template
        self.vocab = {"[BOS]": 1}

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True):
        text = "\n".join(f"<{m['role']}> {m['content']}" for m in messages)
        return text + ("\n<assistant>" if add_generation_prompt else "")

    def __call__(self, text, add_special_tokens=True):
        words = (["[BOS]"] if add_special_tokens else []) + text.split()
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab) + 1) for w in words]}
