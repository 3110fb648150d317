"""The results document (versioned JSON with a schema), the cell store and the environment section."""
