// Package generate is text generation with a causal language model, as
// transformers' generate does it: greedy decoding or sampling (temperature,
// top-k, top-p) with a seed, stopping at an end-of-sequence token or after a
// number of new tokens, with a callback per token for streaming, and
// incremental detokenization that never splits a character (TextStream).
//
// The model is anything that returns next-token logits for a sequence (LM);
// hf/llama's Session is one, with a KV cache so that each new token costs one
// position. The package is pure Go: it depends on neither torch nor cgo.
package generate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LM is a causal language model seen from generation: Logits returns the
// next-token logits (one per vocabulary entry) after seq. Generate calls it with
// the prompt, then with the prompt and the tokens generated so far; an
// implementation keeps what it computed for the previous call (hf/llama.Session
// keeps a KV cache).
type LM interface {
	Logits(seq []int) ([]float32, error)
}

// StopReason says why generation ended.
type StopReason string

// Stop reasons.
const (
	StopEOS          StopReason = "eos"            // an end-of-sequence token was generated
	StopMaxNewTokens StopReason = "max_new_tokens" // Options.MaxNewTokens were generated
	StopMaxLength    StopReason = "max_length"     // the sequence reached Options.MaxLength positions
	StopInterrupted  StopReason = "interrupted"    // the context was cancelled
)

// Options configure Generate.
type Options struct {
	Sampling
	// MaxNewTokens is the most tokens to generate (> 0).
	MaxNewTokens int
	// MaxLength is the most positions the sequence may hold, prompt included (the
	// model's max_position_embeddings); 0: no limit.
	MaxLength int
	// EOS are the end-of-sequence ids: generation stops after generating any of them
	// (it is included in Result.Tokens).
	EOS []int
	// OnToken, when set, is called with every generated token as soon as it is
	// chosen (for streaming); an error it returns ends generation with that error.
	OnToken func(id int) error
}

// Result is what Generate produced.
type Result struct {
	// Tokens are the generated ids, the end-of-sequence token included when one
	// ended generation.
	Tokens []int
	// Stop is why generation ended.
	Stop StopReason
	// PromptTime is the time of the first model call (the prompt, which also gives
	// the first token); DecodeTime that of the calls after it (one per further token).
	PromptTime, DecodeTime time.Duration
}

// DecodeTokensPerSecond is the speed of the calls after the prompt: tokens whose
// logits they computed per second (0 when there were none).
func (r *Result) DecodeTokensPerSecond() float64 {
	n := len(r.Tokens) - 1
	if n <= 0 || r.DecodeTime <= 0 {
		return 0
	}
	return float64(n) / r.DecodeTime.Seconds()
}

// Generate continues prompt with lm until an EOS token, o.MaxNewTokens new tokens,
// o.MaxLength positions, or ctx's end (the tokens so far are returned with
// StopInterrupted and ctx's error).
func Generate(ctx context.Context, lm LM, prompt []int, o Options) (*Result, error) {
	if len(prompt) == 0 {
		return nil, errors.New("generate: the prompt has no tokens")
	}
	if o.MaxNewTokens < 1 {
		return nil, fmt.Errorf("generate: max new tokens %d must be positive", o.MaxNewTokens)
	}
	if o.MaxLength > 0 && len(prompt) >= o.MaxLength {
		return nil, fmt.Errorf("generate: the prompt has %d tokens and the model takes at most %d positions (max_position_embeddings): no room to generate", len(prompt), o.MaxLength)
	}
	sampler, err := NewSampler(o.Sampling)
	if err != nil {
		return nil, err
	}
	eos := make(map[int]bool, len(o.EOS))
	for _, id := range o.EOS {
		eos[id] = true
	}
	seq := append(make([]int, 0, len(prompt)+o.MaxNewTokens), prompt...)
	res := &Result{}
	for {
		if err := ctx.Err(); err != nil {
			res.Stop = StopInterrupted
			return res, err
		}
		start := time.Now()
		logits, err := lm.Logits(seq)
		if len(res.Tokens) == 0 {
			res.PromptTime += time.Since(start)
		} else {
			res.DecodeTime += time.Since(start)
		}
		if err != nil {
			return res, err
		}
		id, err := sampler.Next(logits)
		if err != nil {
			return res, fmt.Errorf("%w (after %d tokens)", err, len(seq))
		}
		seq = append(seq, id)
		res.Tokens = append(res.Tokens, id)
		if o.OnToken != nil {
			if err := o.OnToken(id); err != nil {
				return res, err
			}
		}
		switch {
		case eos[id]:
			res.Stop = StopEOS
		case len(res.Tokens) >= o.MaxNewTokens:
			res.Stop = StopMaxNewTokens
		case o.MaxLength > 0 && len(seq) >= o.MaxLength:
			res.Stop = StopMaxLength
		default:
			continue
		}
		return res, nil
	}
}
