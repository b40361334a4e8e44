package eval

import (
	"errors"
	"fmt"
	"math"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// NLL accumulates the negative log-likelihood of predicted tokens: Sum is the
// total in nats and Tokens the number of tokens predicted. The zero value is
// an empty accumulator.
type NLL struct {
	Sum    float64 `json:"nll_sum"`
	Tokens int64   `json:"tokens"`
}

// Add adds o to n.
func (n *NLL) Add(o NLL) {
	n.Sum += o.Sum
	n.Tokens += o.Tokens
}

// Mean is the mean negative log-likelihood per predicted token (NaN when no
// token was predicted).
func (n NLL) Mean() float64 {
	if n.Tokens == 0 {
		return math.NaN()
	}
	return n.Sum / float64(n.Tokens)
}

// Perplexity is exp(Mean()).
func (n NLL) Perplexity() float64 { return math.Exp(n.Mean()) }

// WindowOptions configure SlidingWindow.
type WindowOptions struct {
	// MaxLen is the window length in tokens (the model's context, for example
	// 1024 for GPT-2 or max_position_embeddings); at least 2.
	MaxLen int
	// Stride is how far the window moves each time; 0 means MaxLen (disjoint
	// windows). It must be in [1, MaxLen]. A smaller stride gives every
	// predicted token more context and costs more forward passes.
	Stride int
	// BatchSize is the number of windows per forward pass; 0 means 1.
	BatchSize int
}

// SlidingWindow returns the negative log-likelihood of ids under the causal LM
// m, as Hugging Face's "Perplexity of fixed-length models" computes it: windows
// of MaxLen tokens start every Stride tokens (the last one ends at the last
// token); each window predicts only the tokens the previous window did not
// (its last end-prevEnd tokens), conditioning on the MaxLen-1 or fewer tokens
// before them; the first token of ids is never predicted, nor, when Stride ==
// MaxLen, the first token of each window. With Stride == MaxLen this equals
// BlocksNLL over consecutive blocks of MaxLen tokens.
//
// Log-probabilities are computed in float32 from the model's logits, in
// no-grad mode, on the model's device.
func SlidingWindow(m nn.Model, ids []int, o WindowOptions) (NLL, error) {
	if o.Stride == 0 {
		o.Stride = o.MaxLen
	}
	if o.BatchSize == 0 {
		o.BatchSize = 1
	}
	switch {
	case o.MaxLen < 2:
		return NLL{}, fmt.Errorf("eval: window length %d must be at least 2", o.MaxLen)
	case o.Stride < 1 || o.Stride > o.MaxLen:
		return NLL{}, fmt.Errorf("eval: stride %d outside [1, %d] (the window length)", o.Stride, o.MaxLen)
	case o.BatchSize < 1:
		return NLL{}, fmt.Errorf("eval: batch size %d must be positive", o.BatchSize)
	case len(ids) < 2:
		return NLL{}, fmt.Errorf("eval: %d tokens: perplexity needs at least 2", len(ids))
	}
	var total NLL
	var batch [][]int
	var skips []int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := windowsNLL(m, batch, skips)
		total.Add(n)
		batch, skips = batch[:0], skips[:0]
		return err
	}
	prevEnd := 0
	for begin := 0; ; begin += o.Stride {
		end := min(begin+o.MaxLen, len(ids))
		w := ids[begin:end]
		skip := max(1, len(w)-(end-prevEnd)) // first position predicted in this window
		if len(batch) > 0 && len(batch[0]) != len(w) {
			if err := flush(); err != nil {
				return total, err
			}
		}
		batch = append(batch, w)
		skips = append(skips, skip)
		if len(batch) == o.BatchSize {
			if err := flush(); err != nil {
				return total, err
			}
		}
		prevEnd = end
		if end == len(ids) {
			break
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	return total, nil
}

// BlocksNLL returns the negative log-likelihood of every token after the first
// of each block (the causal-LM loss of each block, summed), running batchSize
// blocks per forward pass (0 means 8). Blocks of different lengths are allowed;
// consecutive blocks of equal length share a forward pass. This is the mean
// NLL over packed validation blocks used during pretraining: with an eval/c4
// Packer with Overlap = 1, every token after the first of the stream is
// predicted exactly once.
func BlocksNLL(m nn.Model, blocks [][]int, batchSize int) (NLL, error) {
	if batchSize == 0 {
		batchSize = 8
	}
	if batchSize < 1 {
		return NLL{}, fmt.Errorf("eval: batch size %d must be positive", batchSize)
	}
	var total NLL
	for i := 0; i < len(blocks); {
		if len(blocks[i]) < 2 {
			return total, fmt.Errorf("eval: block %d has %d tokens, at least 2 needed", i, len(blocks[i]))
		}
		j := i + 1
		for j < len(blocks) && j-i < batchSize && len(blocks[j]) == len(blocks[i]) {
			j++
		}
		skips := make([]int, j-i)
		for k := range skips {
			skips[k] = 1
		}
		n, err := windowsNLL(m, blocks[i:j], skips)
		if err != nil {
			return total, fmt.Errorf("eval: blocks %d-%d: %w", i, j-1, err)
		}
		total.Add(n)
		i = j
	}
	return total, nil
}

// windowsNLL runs one forward pass over windows (all the same length T) and
// sums -log p(w[t] | w[:t]) for t in [skips[i], T).
func windowsNLL(m nn.Model, windows [][]int, skips []int) (NLL, error) {
	B, T := len(windows), len(windows[0])
	flat := make([]int64, 0, B*T)
	mask := make([]float32, 0, B*(T-1))
	var count int64
	for i, w := range windows {
		if len(w) != T {
			return NLL{}, errors.New("eval: windows of a batch differ in length")
		}
		for _, id := range w {
			flat = append(flat, int64(id))
		}
		for t := 1; t < T; t++ { // target position t is predicted by logits at t-1
			if t >= skips[i] {
				mask = append(mask, 1)
				count++
			} else {
				mask = append(mask, 0)
			}
		}
	}
	if count == 0 {
		return NLL{}, nil
	}
	var sum float64
	var ferr error // an error returned (not panicked) by the model
	err := torch.WithScope(func(s *torch.Scope) error {
		torch.NoGrad(func() {
			dev := m.Device()
			in := s.FromInt64(flat, int64(B), int64(T))
			if dev != torch.CPU {
				in = in.ToDevice(torch.I64, dev)
			}
			out, err := m.Forward(s, &nn.Batch{InputIDs: in}, false)
			if err != nil {
				ferr = err
				return
			}
			if out == nil || out.Logits == nil || out.Logits.Dim() != 3 || out.Logits.Size(0) != int64(B) || out.Logits.Size(1) != int64(T) {
				ferr = fmt.Errorf("the model did not return causal-LM logits [%d, %d, vocab]", B, T)
				return
			}
			lp := out.Logits.Narrow(1, 0, int64(T-1)).To(torch.F32).LogSoftmax(2) // [B, T-1, V]
			tgt := in.Narrow(1, 1, int64(T-1)).Unsqueeze(2)                       // [B, T-1, 1]
			nll := lp.Gather(2, tgt).Squeeze(2)                                   // [B, T-1], log p
			w := s.FromFloat32(mask, int64(B), int64(T-1)).ToDevice(torch.F32, dev)
			sum = -nll.Mul(w).To(torch.F64).Sum().Item()
		})
		return ferr
	})
	if err != nil {
		return NLL{}, fmt.Errorf("eval: forward pass: %w", err)
	}
	return NLL{Sum: sum, Tokens: count}, nil
}
