package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/hf/nn"
)

// Methods lists the training methods the commands accept, BlockLLM first.
var Methods = []string{"blockllm", "adamw", "badam", "lisa"}

// ParseMethods parses a comma-separated list of methods ("blockllm,adamw"),
// case-insensitively, rejecting unknown and repeated names.
func ParseMethods(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		m := strings.ToLower(strings.TrimSpace(f))
		if m == "" {
			continue
		}
		ok := false
		for _, k := range Methods {
			ok = ok || k == m
		}
		if !ok {
			return nil, fmt.Errorf("eval: unknown method %q (want %s)", m, strings.Join(Methods, ", "))
		}
		if seen[m] {
			return nil, fmt.Errorf("eval: method %q listed twice", m)
		}
		seen[m] = true
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("eval: no method given (want one or more of %s)", strings.Join(Methods, ", "))
	}
	return out, nil
}

// MethodConfig holds the optimizer settings the commands take from flags.
// Zero values mean the defaults of package blockllm.
type MethodConfig struct {
	// Method is one of Methods.
	Method string
	// Adam holds the AdamW hyper-parameters shared by every method.
	Adam blockllm.AdamConfig
	// Sparsity and Patience configure BlockLLM (0: blockllm.DefaultSparsity,
	// blockllm.DefaultPatience).
	Sparsity float64
	Patience int
	// Eligible are regular expressions over parameter names selecting
	// BlockLLM's eligible tensors (empty: every tensor but embeddings, the LM
	// head and task heads; ".*" makes embeddings eligible too).
	Eligible []string
	// SwitchEvery is the block switch interval of BAdam and LISA (0: their
	// defaults); LISALayers the number of layers LISA trains at a time.
	SwitchEvery int
	LISALayers  int
	// Seed drives the random choices of BAdam (random order) and LISA.
	Seed uint64
}

// NewOptimizer returns the optimizer c names over m.
func NewOptimizer(m nn.Model, c MethodConfig) (blockllm.Optimizer, error) {
	switch c.Method {
	case "blockllm":
		return blockllm.NewBlockLLM(m, blockllm.BlockLLMConfig{Adam: c.Adam, Sparsity: c.Sparsity, Patience: c.Patience, Eligible: c.Eligible})
	case "adamw":
		return blockllm.NewAdamW(m, c.Adam)
	case "badam":
		return blockllm.NewBAdam(m, blockllm.BAdamConfig{Adam: c.Adam, SwitchEvery: c.SwitchEvery, Seed: c.Seed})
	case "lisa":
		return blockllm.NewLISA(m, blockllm.LISAConfig{Adam: c.Adam, SwitchEvery: c.SwitchEvery, Layers: c.LISALayers, Seed: c.Seed})
	}
	return nil, fmt.Errorf("eval: unknown method %q (want %s)", c.Method, strings.Join(Methods, ", "))
}

// MethodLabel is the name of c in result tables: "BlockLLM (sparsity 0.95)"
// (with ", eligible <patterns>" when Eligible is set), "Full AdamW", "BAdam",
// "LISA".
func MethodLabel(c MethodConfig) string {
	switch c.Method {
	case "blockllm":
		s := c.Sparsity
		if s == 0 {
			s = blockllm.DefaultSparsity
		}
		if len(c.Eligible) > 0 {
			return fmt.Sprintf("BlockLLM (sparsity %.2g, eligible %s)", s, strings.Join(c.Eligible, ","))
		}
		return fmt.Sprintf("BlockLLM (sparsity %.2g)", s)
	case "adamw":
		return "Full AdamW"
	case "badam":
		return "BAdam"
	case "lisa":
		return "LISA"
	}
	return c.Method
}

// LogCollector is an io.Writer for blockllm.TrainConfig.Log: it reads the
// trainer's JSON lines, keeps the largest optimizer state and peak memory of
// the "step" events and counts "selection" events, and copies every line,
// with the fields of Extra added, to Forward when that is not nil. It is
// safe for concurrent use.
type LogCollector struct {
	// Forward receives the JSON lines (nil: none).
	Forward io.Writer
	// Extra fields added to every forwarded line (e.g. task and method).
	Extra map[string]any

	mu         sync.Mutex
	buf        []byte
	maxOpt     int64
	maxPeak    int64
	selections int
}

// Write implements io.Writer.
func (c *LogCollector) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			break
		}
		line := c.buf[:i]
		if err := c.line(line); err != nil {
			return len(p), err
		}
		c.buf = c.buf[i+1:]
	}
	return len(p), nil
}

func (c *LogCollector) line(line []byte) error {
	var ev map[string]any
	if err := json.Unmarshal(line, &ev); err != nil {
		return nil // not ours to judge: forward nothing, keep going
	}
	switch ev["event"] {
	case "step", "summary":
		if mem, ok := ev["memory"].(map[string]any); ok {
			if v, ok := mem["optimizer_state_bytes"].(float64); ok && ev["event"] == "step" {
				c.maxOpt = max(c.maxOpt, int64(v))
			}
			if v, ok := mem["peak_bytes"].(float64); ok {
				c.maxPeak = max(c.maxPeak, int64(v))
			}
		}
	case "selection":
		c.selections++
	}
	if c.Forward == nil {
		return nil
	}
	for k, v := range c.Extra {
		ev[k] = v
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(c.Forward)
	w.Write(b)
	w.WriteByte('\n')
	return w.Flush()
}

// MaxOptimizerBytes is the largest optimizer state seen in a step event.
func (c *LogCollector) MaxOptimizerBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxOpt
}

// MaxPeakBytes is the largest allocator peak seen.
func (c *LogCollector) MaxPeakBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxPeak
}

// Selections counts the BlockLLM selection events seen.
func (c *LogCollector) Selections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.selections
}
