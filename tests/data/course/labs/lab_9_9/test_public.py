def test_public_sanity():
    import mod  # noqa: F401
