"""chainrule's neural-network library, built only on `autograd`'s public API."""
