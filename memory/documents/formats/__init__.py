"""One reader per input format; each turns bytes into a `SectionedDocument`."""
