"""A Perspective-compatible API (Google's `commentanalyzer` v1alpha1 `comments:analyze` and
`comments:suggestscore`), so that a Perspective client switches by changing its base URL."""
