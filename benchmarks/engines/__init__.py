"""One module per engine: `chainrule_engine`, `micrograd_engine`, `floor`.

chainrule and micrograd share the generic workload code in `graph.py` (both have Value
objects with `+ * ** relu`, `.data`, `.grad` and `.backward()`); each supplies an adapter
for what differs. The floor does the same arithmetic on Python floats, with its reverse mode
written out by hand.
"""
