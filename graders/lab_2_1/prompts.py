"""Hidden prompt sets for lab_2_1 (the public README shows others)."""

ORDER = [
    "The engine", "A small batch of", "Every request waits for", "Serving latency is",
    "The grader measures", "First the prompt", "Memory keeps the", "Triton answers",
    "Each student sends", "The queue schedules", "Fast tokens stream", "Large blocks free",
]
# the same prompt twice in one batch: each occurrence gets its own output, in place
ORDER_WITH_REPEAT = ORDER[:6] + [ORDER[2]] + ORDER[6:]
SINGLE = ["The student reads", "A cache of pages", "Next the server"]
LONG_PROMPT = " ".join(["the model keeps every token in the cache"] * 30)  # ~300 tokens
