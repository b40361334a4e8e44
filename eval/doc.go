// Package eval evaluates and reports on models trained with package blockllm:
// perplexity of causal language models (a sliding window with a stride over
// long texts, as in Hugging Face's "Perplexity of fixed-length models", and
// the mean negative log-likelihood over packed validation blocks), the GLUE
// fine-tuning data path (tokenization of single sentences and pairs with
// truncation, dynamically padded batches with attention masks and labels, a
// resumable shuffled batch source for blockllm.Trainer, prediction and
// scoring), result tables in the layout of the BlockLLM and GaLore papers
// (tablewriter) and loss-curve plots (gonum/plot, PNG).
//
// The GLUE readers and metrics live in eval/glue and eval/metrics, the
// C4-format reader and block packer in eval/c4; they are pure Go.
// This package runs models through package torch.
//
// Errors are prefixed "eval:".
package eval
