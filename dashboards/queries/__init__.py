"""PromQL of every dashboard, one module per dashboard, apart from the panel layout."""
