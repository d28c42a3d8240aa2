"""Reading files a user received (models, weights, packed files, recipes, encoder folders) under limits.

Every reader here refuses with one line (`UserError`, exit 2) before it allocates what a file declares, and
never follows a path out of the folder the file came from. The limits and how to raise them are listed in
docs/security.md; they live in `limits.py`.
"""
