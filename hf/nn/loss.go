package nn

import (
	"github.com/blockllm/blockllm-go/torch"
)

// Problem types of sequence-classification heads (config.json's problem_type).
const (
	ProblemRegression  = "regression"
	ProblemSingleLabel = "single_label_classification"
	ProblemMultiLabel  = "multi_label_classification"
)

// ClassificationLoss is transformers' sequence-classification loss for logits
// [B, numLabels]: MSE for regression (problem "regression" or numLabels 1),
// cross-entropy for integer labels (or problem "single_label_classification"),
// otherwise BCE with logits for multi-label float targets. Computed in float32.
func ClassificationLoss(logits, labels *torch.Tensor, numLabels int, problem string, dev torch.Device) *torch.Tensor {
	n := int64(numLabels)
	switch {
	case problem == ProblemRegression || n == 1:
		return logits.To(torch.F32).Reshape(-1).MSELoss(labels.ToDevice(torch.F32, dev).Reshape(-1))
	case !labels.DType().IsFloat() || problem == ProblemSingleLabel:
		return torch.CrossEntropy(logits.To(torch.F32).Reshape(-1, n), labels.ToDevice(torch.I64, dev).Reshape(-1), -100, torch.ReduceMean)
	default:
		// BCEWithLogits: mean(max(x,0) - x*y + log(1 + exp(-|x|)))
		x := logits.To(torch.F32)
		y := labels.ToDevice(torch.F32, dev)
		return x.ClampMin(0).Sub(x.Mul(y)).Add(x.Abs().Neg().Exp().AddScalar(1).Log()).Mean()
	}
}
