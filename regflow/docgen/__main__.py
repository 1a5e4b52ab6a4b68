"""``python -m regflow.docgen [OUT] [--mermaid FILE]``: the generated documentation."""

from regflow.docgen.site import main

if __name__ == "__main__":
    raise SystemExit(main())
