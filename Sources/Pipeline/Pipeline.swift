// Batch pipeline (issue 5). Placeholder until the pipeline lands.
public enum PipelinePlaceholder {}
