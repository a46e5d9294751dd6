// Placeholder so the package resolves while this target is written; delete when the target has sources.
