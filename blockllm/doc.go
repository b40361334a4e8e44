// Package blockllm trains Hugging Face models (any nn.Model) with BlockLLM
// (arXiv 2406.17296) and with the baselines it is compared against: full AdamW,
// BAdam-style cyclic layer blocks and LISA-style random layers.
//
// BlockLLM updates a small, changing block of parameter tensors. On (re)selection it
// runs one forward/backward pass on the current batch in which every eligible tensor
// goes through a gradient-norm probe (torch.NormProbe): the norms are taken as the
// gradients flow and no gradient is kept. Each tensor is scored by its gradient norm
// (or norm per element) divided by (1 + the number of earlier selections that chose it),
// and tensors are taken by descending score until (1 - sparsity) of the eligible
// elements is filled. Adam moments exist only for the chosen tensors (optionally only
// for the top-k coordinates of each, by |gradient|, stored as index and value arrays).
// Between selections only the chosen tensors require grad, so frozen layers below the
// lowest chosen one save no activations. The loss history since the last selection
// drives the trigger: when more than Patience losses are recorded and the mean of the
// last Patience is not below the mean of the whole history, the next step reselects.
//
// Every optimizer implements Optimizer; the Trainer drives one with gradient
// accumulation, global-norm clipping, learning-rate schedules, evaluation, atomic
// checkpoints (model, optimizer and selection state, data position, RNG state), resume,
// clean interruption and memory accounting, and reports typed events (StepEvent,
// SelectionEvent, EvalEvent, ...) to observers; the commands' progress bars and JSON
// lines are observers. MethodConfig and NewOptimizer build any method by name.
//
// Errors returned by this package are prefixed with "blockllm:". Ops that fail inside
// libtorch panic with *torch.Error; the public entry points (constructors, Prepare,
// Step, LoadState, Trainer methods) recover them and return errors.
package blockllm
