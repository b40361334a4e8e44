// Package eval evaluates and reports on models trained with package blockllm,
// and holds what the commands finetune, pretrain and eval share:
//
//   - perplexity of causal language models: SlidingWindow (windows with a
//     stride over long texts, as in Hugging Face's "Perplexity of
//     fixed-length models") and BlocksNLL (the mean negative log-likelihood
//     over packed validation blocks);
//   - the GLUE fine-tuning data path: ParseTasks, EncodeGLUE (single
//     sentences and pairs, truncation), Collate (dynamically padded batches
//     with attention masks and labels), GLUEData (a shuffled, resumable batch
//     source for blockllm.Trainer), Predict and ScoreGLUE;
//   - the training methods of the command-line flags: ParseMethods,
//     NewOptimizer, MethodLabel, and LogCollector, which reads the trainer's
//     JSON lines for the memory columns;
//   - result tables in the layout of the GaLore and BlockLLM papers
//     (WriteGLUETable, WritePretrainTable, WritePPLTable, with tablewriter)
//     and loss-curve plots (PlotCurves, with gonum/plot).
//
// The GLUE readers and metrics live in eval/glue and eval/metrics, the
// C4-format reader and block packer in eval/c4; they are pure Go. This package
// runs models through package torch.
//
// Errors are prefixed "eval:".
package eval
