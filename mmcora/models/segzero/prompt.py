"""Seg-Zero's user prompt (``verl/utils/rl_dataset.py`` at commit 77f9ea5), fragment by fragment.

The fragments are joined with no separating space, as Seg-Zero joins them, and the question is
``problem.lower().strip('.')``. Seg-Zero's example answer is written with single quotes, which
is not JSON: a reply that copies it scores 0 on every JSON-based reward, and Seg-Zero's
released models were trained with it. ``json_example=False`` (the default) keeps it for
parity with those models; ``True`` writes the same example as valid JSON.
"""
PROMPT_FRAGMENTS = (
    "Please find '{question}' with bbox and points.",
    'Compare the difference between objects and find the most closely matched one.',
    'Output the thinking process in <think> </think> and final answer in <answer> </answer> '
    'tags.',
    'Output the one bbox and points of two largest inscribed circles inside the interested '
    'object in JSON format.',
    'i.e., <think> thinking process here </think>',
    '<answer>{answer}</answer>',
)
# Seg-Zero's example answer, character for character, and the same as valid JSON.
EXAMPLE_ANSWER = "{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}"
EXAMPLE_ANSWER_JSON = EXAMPLE_ANSWER.replace("'", '"')


def seg_zero_question(text: str) -> str:
    """An instruction as Seg-Zero puts it in the prompt: lower case, no leading/trailing dots.

    Args:
        text (str): The instruction or question.

    Returns:
        str: ``text.lower().strip('.')``.
    """
    return text.lower().strip('.')


def seg_zero_prompt(text: str, json_example: bool = False) -> str:
    """Seg-Zero's user prompt for one instruction (the image goes before it).

    Args:
        text (str): The instruction or question.
        json_example (bool): Write the example answer as valid JSON instead of Seg-Zero's
            single-quoted Python dict.

    Returns:
        str: The prompt text.
    """
    answer = EXAMPLE_ANSWER_JSON if json_example else EXAMPLE_ANSWER
    return ''.join(PROMPT_FRAGMENTS).format(question=seg_zero_question(text), answer=answer)
