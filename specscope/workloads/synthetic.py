"""Synthetic prompts for training draft heads: thousands of varied requests in the bundled workloads' shapes, offline.

    prompts = synthetic_prompts(2000, seed=0)      # list[Prompt], ids `synth-<family>-<n>`

A draft head trained on the ~100 bundled prompts memorises them (see
specscope/data/heads/smollm2-135m/TRAINING.md); it needs many more contexts, and this machine reaches no
dataset hub. So the prompts are assembled here from material every Python installation carries and
from templates written for specscope, with a seeded RNG (same seed and Python version -> same prompts):

- code-edit: a function (4-30 lines) from the running Python's standard-library source + an edit
  instruction ("add type hints", "add a docstring", ...), asking for the complete edited code;
- summarize: a passage (80-320 words) of the language reference shipped as `pydoc_data.topics`, or a
  long module docstring, + a summary or explanation instruction;
- chat: everyday questions from templates x topic lists;
- math: grade-school word problems from templates with random names, items and numbers, in the math
  workload's answer format;
- aime: short number-theory and counting problems with random parameters, in the aime format.

Families are drawn round-robin so any prefix of the list is balanced. Only the prompts are
synthetic: the answers a head learns from are the target's own greedy outputs (`heads/data.py`).
"""

from __future__ import annotations

import ast
import functools
import random
import re
import sysconfig
import textwrap
from pathlib import Path

from specscope.workloads.prompt import Prompt
from specscope.workloads.registry import get_workload

FAMILIES = ("chat", "code-edit", "summarize", "math", "aime")  # names of bundled workloads (their limits apply)

CODE_EDITS = (
    "Add type hints to every function parameter and return value.",
    "Add a docstring that explains what the function does, its arguments and its return value.",
    "Rename the local variables to longer, more descriptive names.",
    "Add input validation that raises a ValueError with a helpful message for bad arguments.",
    "Add comments that explain each step of the function.",
    "Rewrite the function so that it uses early returns instead of nested conditions where possible.",
    "Add logging with the standard logging module at the start and end of the function.",
    "Convert the function into a method of a new class with a sensible name.",
    "Make the function more readable without changing its behaviour.",
    "Write a short unit test with unittest for the function, and include the function itself.",
    "Replace string formatting with f-strings wherever strings are built.",
    "Add a keyword-only argument `verbose=False` that prints what the function is doing when true.",
)
CODE_TAILS = (
    "Rewrite the code with this change applied and reply with the complete edited code.",
    "Reply with the complete edited code.",
    "Show the full updated function.",
)

SUMMARY_ASKS = (
    "Summarize the following text in three or four sentences.",
    "Summarize the following passage for a beginner programmer in one short paragraph.",
    "Explain the main idea of the following documentation in simple words.",
    "List the three most important points of the following text as bullet points.",
    "Write a one-sentence summary of the following text, then a short explanation.",
)

CHAT_TEMPLATES = (
    "What are some good ways to {activity}?",
    "Can you give me a few tips for {activity}?",
    "I want to get better at {activity}. Where should I start?",
    "Explain {concept} in simple terms.",
    "What is the difference between {concept} and {concept2}?",
    "Why is {concept} important?",
    "Write a short {form} about {subject}.",
    "Give me a {form} about {subject}, please.",
    "How do I {task}?",
    "What should I know before I {task}?",
    "What are the pros and cons of {choice}?",
    "My friend says {claim}. Is that true?",
    "Plan a simple {meal} for {people} people, with a shopping list.",
    "Suggest five names for {thing}.",
    "Write a polite email to {recipient} about {matter}.",
    "I have {time} free this weekend. Suggest a plan that involves {activity}.",
    "Describe {subject} to a ten-year-old.",
    "What are common mistakes people make when they {task}?",
)
CHAT_WORDS = {
    "activity": ("stay active in winter", "learn a new language", "save money on groceries", "sleep better",
                 "keep a houseplant alive", "read more books", "start running", "cook for one person",
                 "practise the guitar", "study for exams", "make new friends in a new city", "reduce screen time",
                 "keep a journal", "learn to draw", "organise a small kitchen", "garden on a balcony",
                 "prepare for a job interview", "stay focused while working from home", "learn to swim",
                 "take better photos with a phone"),
    "concept": ("compound interest", "photosynthesis", "inflation", "machine learning", "the water cycle",
                "a black hole", "vaccination", "supply and demand", "recursion", "climate change", "gravity",
                "the immune system", "a database index", "electric cars", "the stock market", "encryption",
                "a budget", "evolution", "the internet", "a healthy diet", "renewable energy", "democracy"),
    "form": ("poem", "story", "limerick", "dialogue", "product description", "haiku", "speech", "letter"),
    "subject": ("a lighthouse keeper", "autumn rain", "a lost cat", "the first day at a new school", "the ocean",
                "a robot that learns to paint", "a busy train station", "an old library", "a mountain village",
                "friendship", "a summer thunderstorm", "a bakery at dawn", "the moon", "a chess tournament"),
    "task": ("change a flat tyre", "write a cover letter", "bake bread at home", "set up a home network",
             "apply for a passport", "train a puppy", "paint a room", "negotiate a salary", "start a podcast",
             "move to another country", "back up my computer", "plan a road trip", "learn to code in Python",
             "repair a bicycle chain", "give a presentation", "buy a used car"),
    "choice": ("renting versus buying a home", "working from home", "electric cars", "learning online",
               "living in a big city", "having a dog", "freelancing", "public transport", "a gap year",
               "buying a laptop instead of a desktop"),
    "claim": ("we only use ten percent of our brains", "cracking your knuckles causes arthritis",
              "goldfish have a three-second memory", "lightning never strikes the same place twice",
              "you should drink eight glasses of water a day", "bats are blind", "sugar makes children hyperactive",
              "the Great Wall of China is visible from space"),
    "meal": ("dinner", "vegetarian lunch", "breakfast", "picnic", "birthday dinner", "weeknight dinner"),
    "people": ("two", "four", "six", "eight"),
    "thing": ("a coffee shop", "a pet turtle", "a hiking club", "a small bakery", "a science podcast",
              "a board game", "a sailing boat", "a book club"),
    "recipient": ("my landlord", "a teacher", "my manager", "a neighbour", "a customer service team", "a colleague"),
    "matter": ("a broken heater", "a late assignment", "taking a day off", "noise at night", "a wrong delivery",
               "a meeting next week", "a refund"),
    "time": ("one afternoon", "two days", "a few hours", "Saturday morning"),
}

NAMES = ("Priya", "Tom", "Aiko", "Mateo", "Fatima", "Liam", "Chen", "Olga", "Kwame", "Sara", "Diego", "Nina")
ITEMS = (("notebook", "notebooks"), ("apple", "apples"), ("pencil", "pencils"), ("ticket", "tickets"),
         ("book", "books"), ("cupcake", "cupcakes"), ("marble", "marbles"), ("stamp", "stamps"))
MATH_TAIL = "Solve the problem step by step. End with the final numeric answer on its own line in the form '#### <answer>'."
AIME_TAIL = "Reason carefully step by step. The answer is an integer from 0 to 999; put it in \\boxed{} at the end."


def _math_problem(rng: random.Random) -> str:
    name, other = rng.sample(NAMES, 2)
    one, many = rng.choice(ITEMS)
    a, b, c = rng.randint(2, 12), rng.randint(2, 9), rng.randint(2, 20)
    price = rng.choice((1.5, 2, 2.5, 3, 4, 5, 7.5))
    templates = (
        f"{name} buys {a} {many} at ${price} each and pays with a ${int(a * price) + c} bill. How much change does {name} get, in dollars?",
        f"{name} has {a * b} {many} and shares them equally among {b} friends. Each friend gives {c % 3 + 1} back. How many {many} does each friend keep?",
        f"A shop sells {many} in packs of {b}. {name} needs {a * b + c} {many}. How many packs must {name} buy?",
        f"{name} reads {a} pages on Monday and {b} more pages each day than the day before. How many pages has {name} read after {c % 5 + 3} days?",
        f"{name} had {c + a * b} {many}. {name} gave {a} to {other} and then lost half of the rest. How many {many} are left?",
        f"A train travels at {a * 10} km per hour for {b} hours and then at {c * 5} km per hour for {a % 4 + 1} hours. How far does it travel in total, in km?",
        f"{name} earns ${a * 5} per hour and works {b} hours a day for {c % 6 + 2} days. {name} spends a quarter of the money. How much is left, in dollars?",
        f"The price of one {one} rose from ${b} to ${b + c % 5 + 1}. By what percentage did the price rise? Round to one decimal place.",
        f"{name} and {other} together have {a + b + c} {many}. {name} has {c} more than {other}. How many does {other} have?",
        f"A rectangle is {a + 3} cm long and {b + 1} cm wide. A square has the same perimeter. What is the area of the square, in square cm?",
    )
    return f"{rng.choice(templates)}\n\n{MATH_TAIL}"


def _aime_problem(rng: random.Random) -> str:
    n, m, a = rng.choice((100, 200, 500, 1000)), rng.choice((3, 5, 7, 9, 11, 13)), rng.randint(1, 9)
    templates = (
        f"Find the number of positive integers $n \\le {n}$ such that $n^2 + {a}$ is divisible by ${m}$.",
        f"Find the remainder when ${a + 1}^{{{n}}}$ is divided by ${m * 10 + 1}$.",
        f"How many ordered pairs of positive integers $(x, y)$ satisfy $x + y \\le {m + 10}$ and $x \\cdot y$ is a multiple of ${a + 1}$?",
        f"Find the sum of all positive divisors of ${n + a * m}$, modulo $1000$.",
        f"Let $S$ be the set of integers from $1$ to ${n}$ that are divisible by ${m}$ or by ${a + 1}$. Find $|S|$ modulo $1000$.",
        f"A sequence has $a_1 = {a}$ and $a_{{k+1}} = a_k + {m}k$. Find $a_{{{m + 10}}}$ modulo $1000$.",
        f"In how many ways can ${m}$ identical balls be placed into ${a % 4 + 2}$ distinct boxes? Give the answer modulo $1000$.",
        f"Find the number of ${a % 3 + 3}$-digit positive integers whose digits sum to ${m + 4}$, modulo $1000$.",
    )
    return f"{rng.choice(templates)}\n\n{AIME_TAIL}"


def _chat_prompt(rng: random.Random) -> str:
    template = rng.choice(CHAT_TEMPLATES)
    words = {key: rng.choice(values) for key, values in CHAT_WORDS.items()}
    words["concept2"] = rng.choice([c for c in CHAT_WORDS["concept"] if c != words["concept"]])
    return template.format(**words)


@functools.lru_cache(maxsize=1)
def _stdlib_modules() -> tuple[tuple[str, ast.Module], ...]:
    """(source, syntax tree) of every top-level module of the standard library, parsed once per process."""
    out = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            source = path.read_text(encoding="utf-8")
            out.append((source, ast.parse(source)))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
    return tuple(out)


def stdlib_functions(limit_files: int = 400) -> list[str]:
    """Source of short functions and methods (4-30 lines) in the first `limit_files` stdlib modules, dedented."""
    out = []
    for source, tree in _stdlib_modules()[:limit_files]:
        lines = source.splitlines(keepends=True)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.end_lineno is None:
                continue
            if not 4 <= node.end_lineno - node.lineno + 1 <= 30 or node.name.startswith("__"):
                continue
            # The def's lines (indentation kept), the last one cut where the node ends (a byte offset).
            last = lines[node.end_lineno - 1].encode()[: node.end_col_offset].decode()
            segment = "".join(lines[node.lineno - 1 : node.end_lineno - 1]) + last
            if "\t" not in segment:
                out.append(textwrap.dedent(segment).strip())
    return out


def prose_passages() -> list[str]:
    """Passages of 80-320 words: the language reference of `pydoc_data.topics`, long module docstrings."""
    texts = []
    try:
        from pydoc_data.topics import topics

        texts.extend(topics[name] for name in sorted(topics))
    except ImportError:  # a trimmed Python without pydoc_data
        pass
    texts.extend(doc for _, tree in _stdlib_modules() if (doc := ast.get_docstring(tree)))
    passages = []
    for text in texts:
        chunk: list[str] = []
        for para in re.split(r"\n\s*\n", text):
            para = para.strip()
            if not para:
                continue
            chunk.append(para)
            words = sum(len(p.split()) for p in chunk)
            if words >= 80:
                if words <= 320:
                    passages.append("\n\n".join(chunk))
                chunk = []
    return passages


def synthetic_prompts(count: int, seed: int = 0) -> list[Prompt]:
    """`count` prompts, families round-robin (FAMILIES), each from a seeded generator."""
    if count <= 0:
        return []
    rng = random.Random(seed)
    functions, passages = stdlib_functions(), prose_passages()
    rng.shuffle(functions)
    rng.shuffle(passages)
    out, seen = [], set()
    for i in range(count):
        family = FAMILIES[i % len(FAMILIES)]
        n = i // len(FAMILIES)
        if family == "code-edit" and functions:
            code = functions[n % len(functions)]
            text = f"{rng.choice(CODE_EDITS)}\n\n```python\n{code}\n```\n\n{rng.choice(CODE_TAILS)}"
        elif family == "summarize" and passages:
            text = f"{rng.choice(SUMMARY_ASKS)}\n\nText:\n{passages[n % len(passages)]}"
        elif family == "math":
            text = _math_problem(rng)
        elif family == "aime":
            text = _aime_problem(rng)
        else:
            text = _chat_prompt(rng)
            for _ in range(50):  # templates repeat: prefer a question not asked yet
                if text not in seen:
                    break
                text = _chat_prompt(rng)
        seen.add(text)
        workload = get_workload(family)
        out.append(Prompt(id=f"synth-{family}-{n:05d}", workload=family, messages=({"role": "user", "content": text},),
                          max_new_tokens=workload.max_new_tokens, is_reasoning=workload.is_reasoning, source="synthetic"))
    return out
