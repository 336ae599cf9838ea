"""Hidden graders of lab_2_3 (FastAPI service over vLLM)."""
