package blockllm

import (
	"fmt"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Memory is a memory account in bytes. Weights, gradients and optimizer state are exact
// sums over the tensors held; Current and Peak come from the device allocator
// (torch.MemStats: on CPU every tensor storage, saved activations included).
type Memory struct {
	Params          int64 `json:"params"`           // parameter elements
	TrainableParams int64 `json:"trainable_params"` // elements of the trainable set
	Weights         int64 `json:"weights_bytes"`
	Gradients       int64 `json:"gradient_bytes"`
	OptimizerState  int64 `json:"optimizer_state_bytes"`
	Current         int64 `json:"current_bytes"`
	Peak            int64 `json:"peak_bytes"`
}

// String formats the account with binary units.
func (m Memory) String() string {
	return fmt.Sprintf("weights %s, grads %s, optimizer %s, peak %s",
		torch.FormatBytes(m.Weights), torch.FormatBytes(m.Gradients), torch.FormatBytes(m.OptimizerState), torch.FormatBytes(m.Peak))
}

// MeasureMemory accounts for model's weights, the gradients its parameters hold now,
// opt's state (opt may be nil) and the device allocator's statistics.
func MeasureMemory(model nn.Model, opt Optimizer) (Memory, error) {
	var m Memory
	err := catch(func() error {
		return torch.WithScope(func(s *torch.Scope) error {
			for _, p := range model.Parameters() {
				m.Params += p.Numel()
				m.Weights += p.T.NBytes()
				if g := p.T.GradIn(s); g != nil {
					m.Gradients += g.NBytes()
				}
			}
			return nil
		})
	})
	if err != nil {
		return m, err
	}
	if opt != nil {
		m.TrainableParams = numel(opt.Trainable())
		m.OptimizerState = opt.StateBytes()
	}
	m.Current, m.Peak = torch.MemStats(model.Device())
	return m, nil
}

// GradParams lists the parameters of ps that hold a gradient now.
func GradParams(ps []*nn.Param) ([]*nn.Param, error) {
	var out []*nn.Param
	err := catch(func() error {
		return torch.WithScope(func(s *torch.Scope) error {
			for _, p := range ps {
				if p.T.GradIn(s) != nil {
					out = append(out, p)
				}
			}
			return nil
		})
	})
	return out, err
}
