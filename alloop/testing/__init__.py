"""Reusable conformance checks for Potential and Labeler implementations (importable by users' tests)."""
