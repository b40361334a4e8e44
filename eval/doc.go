// Package eval evaluates models trained with package blockllm, independently of how
// they were trained (it does not import blockllm):
//
//   - perplexity of causal language models: SlidingWindow (windows with a stride over
//     long texts, as in Hugging Face's "Perplexity of fixed-length models") and
//     BlocksNLL (the mean negative log-likelihood over packed validation blocks);
//   - GLUE scoring of sequence classifiers: Predict and ScoreGLUE.
//
// The benchmarks' data live in sub-packages: eval/glue (GLUE readers, tokenization and
// training batches), eval/c4 (C4-format text, block packing), eval/metrics (the
// scores); eval/report writes result tables in the layout of the GaLore and BlockLLM
// papers and loss-curve plots.
//
// Errors are prefixed "eval:".
package eval
