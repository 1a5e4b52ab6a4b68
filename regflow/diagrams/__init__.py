"""Drawing flows: the layout model, DOT/SVG, Mermaid, text, the overview, traffic."""
