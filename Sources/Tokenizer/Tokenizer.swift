// WordPiece tokenizer (issue 2). Placeholder until the tokenizer lands.
public enum TokenizerPlaceholder {}
