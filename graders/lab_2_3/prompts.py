"""Hidden requests for lab_2_3 (the public README shows others)."""

COMPLETION = ["The student reads", "A cache of pages"]
COMPLETION_MAX_TOKENS = 16

CHAT = [{"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What does the queue schedule?"}]
CHAT_MAX_TOKENS = 12

STREAM_PROMPT = "Next the server"
STREAM_MAX_TOKENS = 48
STREAM_CHAT = [{"role": "user", "content": "How fast do tokens stream?"}]
STREAM_CHAT_MAX_TOKENS = 24

LOAD_PROMPTS = ["Every request waits for", "The queue schedules", "Fast tokens stream",
                "Large blocks free", "Memory keeps the", "The grader measures",
                "Each student sends", "Triton answers"]
ABORT_PROMPT = "The engine"

# (what, endpoint, body): each must be answered 422
WRONG_TYPES = [
    ("a prompt that is a number", "/v1/completions",
     {"prompt": 42, "max_tokens": 4}),
    ("no prompt at all", "/v1/completions", {"max_tokens": 4}),
    ("max_tokens given as the string 'ten'", "/v1/completions",
     {"prompt": "The engine", "max_tokens": "ten"}),
    ("temperature given as a list", "/v1/completions",
     {"prompt": "The engine", "max_tokens": 4, "temperature": [0.5]}),
    ("messages given as a string", "/v1/chat/completions",
     {"messages": "hello", "max_tokens": 4}),
    ("a message without content", "/v1/chat/completions",
     {"messages": [{"role": "user"}], "max_tokens": 4}),
    ("a body that is not JSON", "/v1/completions", "this is not json"),
]
OUT_OF_RANGE = [
    ("max_tokens=-5", "/v1/completions", {"prompt": "The engine", "max_tokens": -5}),
    ("max_tokens=0", "/v1/completions", {"prompt": "The engine", "max_tokens": 0}),
    ("temperature=3.5", "/v1/completions",
     {"prompt": "The engine", "max_tokens": 4, "temperature": 3.5}),
    ("temperature=-0.1", "/v1/completions",
     {"prompt": "The engine", "max_tokens": 4, "temperature": -0.1}),
    ("top_p=1.5", "/v1/completions", {"prompt": "The engine", "max_tokens": 4, "top_p": 1.5}),
    ("an empty prompt", "/v1/completions", {"prompt": "", "max_tokens": 4}),
    ("an empty messages list", "/v1/chat/completions", {"messages": [], "max_tokens": 4}),
    ("max_tokens=-1 in a chat request", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}),
    ("temperature=2.5 in a chat request", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 2.5}),
]
