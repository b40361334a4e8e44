package eval

import (
	"fmt"
	"sort"

	"github.com/blockllm/blockllm-go/eval/instruct"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// SequencesNLL is a causal LM's negative log-likelihood over the learned positions of
// seqs (instruction tuning's validation loss: the response tokens only), batchSize
// sequences per forward pass (0: 8), sorted by length so that batches hold little
// padding. It runs in no-grad mode.
func SequencesNLL(m nn.Model, seqs []instruct.Sequence, batchSize, pad int) (NLL, error) {
	if batchSize == 0 {
		batchSize = 8
	}
	if batchSize < 1 {
		return NLL{}, fmt.Errorf("eval: batch size %d must be positive", batchSize)
	}
	order := make([]int, len(seqs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(seqs[order[a]].IDs) < len(seqs[order[b]].IDs) })
	var total NLL
	for start := 0; start < len(order); start += batchSize {
		var batch []instruct.Sequence
		for _, i := range order[start:min(start+batchSize, len(order))] {
			batch = append(batch, seqs[i])
		}
		n := instruct.LearnedPositions(batch)
		if n == 0 {
			continue
		}
		var ferr error
		err := torch.WithScope(func(s *torch.Scope) error {
			b, err := instruct.Collate(s, batch, pad, m.Device())
			if err != nil {
				return err
			}
			torch.NoGrad(func() {
				out, err := m.Forward(s, b, false)
				if err != nil {
					ferr = err
					return
				}
				if out == nil || out.Loss == nil {
					ferr = fmt.Errorf("the model returned no loss")
					return
				}
				total.Add(NLL{Sum: out.Loss.Item() * float64(n), Tokens: int64(n)})
			})
			return ferr
		})
		if err != nil {
			return total, fmt.Errorf("eval: validation loss: %w", err)
		}
	}
	return total, nil
}
