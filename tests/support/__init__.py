"""Helpers shared by the tests: real servers started privately for one test session."""
