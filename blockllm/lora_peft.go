package blockllm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

// peft's adapter files (peft.utils.constants CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME).
const (
	AdapterConfigFile = "adapter_config.json"
	AdapterModelFile  = "adapter_model.safetensors"
)

// peftPrefix is the prefix of every key of a saved peft adapter (PeftModel wraps the
// transformers model as base_model.model).
const peftPrefix = "base_model.model."

// peft task types.
const (
	TaskCausalLM = "CAUSAL_LM"
	TaskSeqCls   = "SEQ_CLS"
)

// AdapterInfo describes the model an adapter belongs to, for adapter_config.json.
type AdapterInfo struct {
	// BaseModel is base_model_name_or_path: the directory (or hub id) of the base model;
	// "" writes null.
	BaseModel string
	// TaskType is peft's task_type: TaskCausalLM or TaskSeqCls; "" guesses from the
	// model (a task head means SEQ_CLS).
	TaskType string
}

// peftSeqClsModules are the modules PeftModelForSequenceClassification adds to
// modules_to_save (and writes into the config).
var peftSeqClsModules = []string{"classifier", "score"}

// SaveAdapter writes the adapters in peft's layout to dir, as PeftModel.save_pretrained
// does: adapter_config.json (LoraConfig's fields, sorted keys, indent 2) and
// adapter_model.safetensors with peft's key names (metadata {"format": "pt"}):
// "base_model.model.<module>.lora_A.weight" and ".lora_B.weight" for each adapted
// module, and "base_model.model.<name>" for each parameter trained in full (peft's
// modules_to_save). The adapters are saved in their dtype (float32 for half weights),
// the fully trained parameters in theirs.
func (o *LoRA) SaveAdapter(dir string, info AdapterInfo) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("blockllm: lora: %w", err)
	}
	task := info.TaskType
	if task == "" {
		task = TaskCausalLM
		for _, p := range o.full {
			if p.Head {
				task = TaskSeqCls
			}
		}
	}
	cfg := o.peftConfig(info.BaseModel, task)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("blockllm: lora: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n")) // json.dumps writes no newline
	var ts []safetensors.Tensor
	err := catch(func() error {
		for _, x := range o.adapters {
			for _, p := range []*nn.Param{x.a, x.b} {
				t, err := nn.SafetensorsTensor(peftPrefix+p.Name, p.T, 0)
				if err != nil {
					return err
				}
				ts = append(ts, t)
			}
		}
		for _, p := range o.full {
			t, err := nn.SafetensorsTensor(peftPrefix+p.Name, p.T, 0)
			if err != nil {
				return err
			}
			ts = append(ts, t)
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
		return safetensors.Save(filepath.Join(dir, AdapterModelFile), ts, map[string]string{"format": "pt"})
	})
	if err != nil {
		return fmt.Errorf("blockllm: lora: saving %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, AdapterConfigFile), b, 0o644); err != nil {
		return fmt.Errorf("blockllm: lora: %w", err)
	}
	return nil
}

// peftConfig is adapter_config.json: the LoraConfig fields every peft release since
// 0.10 knows (a newer peft fills in the others with their defaults), with their
// values for plain LoRA.
func (o *LoRA) peftConfig(base, task string) map[string]any {
	var baseV any
	if base != "" {
		baseV = base
	}
	var targets any
	if o.cfg.TargetRegex != "" {
		targets = o.cfg.TargetRegex
	} else {
		ts := o.cfg.Targets
		if len(ts) == 0 {
			ts = DefaultLoRATargets(o.model.Parameters())
		}
		if len(ts) == 1 && ts[0] == AllLinear {
			targets = AllLinear
		} else {
			ts = append([]string(nil), ts...)
			sort.Strings(ts)
			targets = ts
		}
	}
	var modules []string
	seen := map[string]bool{}
	add := func(m string) {
		if !seen[m] {
			seen[m] = true
			modules = append(modules, m)
		}
	}
	if task == TaskSeqCls {
		for _, m := range peftSeqClsModules {
			add(m)
		}
	}
	for _, p := range o.full {
		if p.Head {
			add(strings.SplitN(p.Name, ".", 2)[0]) // the head module ("classifier", "score")
			continue
		}
		add(p.Name[:max(0, strings.LastIndex(p.Name, "."))])
	}
	var mts any
	if len(modules) > 0 {
		mts = modules
	}
	alpha := any(o.cfg.Alpha)
	if o.cfg.Alpha == float64(int64(o.cfg.Alpha)) {
		alpha = int64(o.cfg.Alpha) // peft's lora_alpha is an int
	}
	return map[string]any{
		"alpha_pattern":           map[string]any{},
		"auto_mapping":            nil,
		"base_model_name_or_path": baseV,
		"bias":                    "none",
		"fan_in_fan_out":          false,
		"inference_mode":          true,
		"init_lora_weights":       true,
		"layer_replication":       nil,
		"layers_pattern":          nil,
		"layers_to_transform":     nil,
		"loftq_config":            map[string]any{},
		"lora_alpha":              alpha,
		"lora_dropout":            o.cfg.Dropout,
		"megatron_config":         nil,
		"megatron_core":           "megatron.core",
		"modules_to_save":         mts,
		"peft_type":               "LORA",
		"r":                       o.cfg.Rank,
		"rank_pattern":            map[string]any{},
		"revision":                nil,
		"target_modules":          targets,
		"task_type":               task,
		"use_dora":                false,
		"use_rslora":              o.cfg.RSLoRA,
	}
}

// peftFile is what LoadLoRAAdapter reads of adapter_config.json.
type peftFile struct {
	PeftType          string          `json:"peft_type"`
	R                 int             `json:"r"`
	LoraAlpha         float64         `json:"lora_alpha"`
	LoraDropout       float64         `json:"lora_dropout"`
	TargetModules     json.RawMessage `json:"target_modules"`
	ExcludeModules    json.RawMessage `json:"exclude_modules"`
	ModulesToSave     []string        `json:"modules_to_save"`
	Bias              string          `json:"bias"`
	FanInFanOut       bool            `json:"fan_in_fan_out"`
	UseRSLoRA         bool            `json:"use_rslora"`
	UseDoRA           bool            `json:"use_dora"`
	LoraBias          bool            `json:"lora_bias"`
	LayersToTransform json.RawMessage `json:"layers_to_transform"`
	RankPattern       map[string]any  `json:"rank_pattern"`
	AlphaPattern      map[string]any  `json:"alpha_pattern"`
	BaseModel         *string         `json:"base_model_name_or_path"`
	TaskType          *string         `json:"task_type"`
}

func isNull(r json.RawMessage) bool {
	s := strings.TrimSpace(string(r))
	return s == "" || s == "null" || s == "[]"
}

// ReadAdapterConfig reads dir/adapter_config.json (peft's layout) into a LoRAConfig and
// the adapter's AdapterInfo. Settings plain LoRA does not have (DoRA, LoRA biases,
// fan_in_fan_out, per-module ranks, layer selection, exclusions) are errors naming the
// key.
func ReadAdapterConfig(dir string) (LoRAConfig, AdapterInfo, error) {
	path := filepath.Join(dir, AdapterConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return LoRAConfig{}, AdapterInfo{}, fmt.Errorf("blockllm: lora: %w", err)
	}
	var f peftFile
	if err := json.Unmarshal(b, &f); err != nil {
		return LoRAConfig{}, AdapterInfo{}, fmt.Errorf("blockllm: lora: %s: %w", path, err)
	}
	bad := func(key, why string) error {
		return fmt.Errorf("blockllm: lora: %s: %q %s (plain LoRA only)", path, key, why)
	}
	switch {
	case f.PeftType != "LORA":
		return LoRAConfig{}, AdapterInfo{}, bad("peft_type", fmt.Sprintf("is %q, not \"LORA\"", f.PeftType))
	case f.R <= 0:
		return LoRAConfig{}, AdapterInfo{}, bad("r", fmt.Sprintf("is %d, not a positive rank", f.R))
	case f.Bias != "" && f.Bias != "none":
		return LoRAConfig{}, AdapterInfo{}, bad("bias", fmt.Sprintf("is %q, not \"none\"", f.Bias))
	case f.UseDoRA:
		return LoRAConfig{}, AdapterInfo{}, bad("use_dora", "is true: DoRA is not supported")
	case f.LoraBias:
		return LoRAConfig{}, AdapterInfo{}, bad("lora_bias", "is true: adapter biases are not supported")
	case f.FanInFanOut:
		return LoRAConfig{}, AdapterInfo{}, bad("fan_in_fan_out", "is true: Conv1D layers are not supported")
	case !isNull(f.LayersToTransform):
		return LoRAConfig{}, AdapterInfo{}, bad("layers_to_transform", "is set: layer selection is not supported")
	case len(f.RankPattern) > 0 || len(f.AlphaPattern) > 0:
		return LoRAConfig{}, AdapterInfo{}, bad("rank_pattern", "or alpha_pattern is set: per-module ranks are not supported")
	case !isNull(f.ExcludeModules):
		return LoRAConfig{}, AdapterInfo{}, bad("exclude_modules", "is set: exclusions are not supported")
	case f.LoraDropout < 0 || f.LoraDropout >= 1:
		return LoRAConfig{}, AdapterInfo{}, bad("lora_dropout", fmt.Sprintf("is %g, outside [0, 1)", f.LoraDropout))
	}
	c := LoRAConfig{Rank: f.R, Alpha: f.LoraAlpha, Dropout: f.LoraDropout, RSLoRA: f.UseRSLoRA}
	if c.Alpha == 0 {
		c.Alpha = 8 // peft's default lora_alpha
	}
	var list []string
	var str string
	switch {
	case isNull(f.TargetModules):
		return LoRAConfig{}, AdapterInfo{}, bad("target_modules", "is missing")
	case json.Unmarshal(f.TargetModules, &list) == nil:
		sort.Strings(list)
		c.Targets = list
	case json.Unmarshal(f.TargetModules, &str) == nil:
		if str == AllLinear {
			c.Targets = []string{AllLinear}
		} else {
			c.TargetRegex = str
		}
	default:
		return LoRAConfig{}, AdapterInfo{}, bad("target_modules", "is neither a list of names nor a string")
	}
	var info AdapterInfo
	if f.BaseModel != nil {
		info.BaseModel = *f.BaseModel
	}
	if f.TaskType != nil {
		info.TaskType = *f.TaskType
	}
	return c, info, nil
}

// LoadLoRAAdapter reads an adapter in peft's layout (adapter_config.json and
// adapter_model.safetensors, as SaveAdapter or peft's save_pretrained writes them) onto
// m: a LoRA with the file's rank, alpha, dropout and targets, its adapters set from
// the file, and the parameters the file carries besides (modules_to_save: a
// classifier) copied into m and trained in full. Every adapter of the targets must be
// in the file, with its shape, and the file must hold nothing else; the error names
// every missing, mis-shaped and unexpected key. adam configures further training; the
// dropout can be overridden afterwards only by building a new LoRA.
func LoadLoRAAdapter(m nn.Model, dir string, adam AdamConfig, seed uint64) (*LoRA, AdapterInfo, error) {
	cfg, info, err := ReadAdapterConfig(dir)
	if err != nil {
		return nil, info, err
	}
	path := filepath.Join(dir, AdapterModelFile)
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, info, fmt.Errorf("blockllm: lora: %w", err)
	}
	defer f.Close()
	byName := paramIndex(m.Parameters())
	var problems []string
	full := map[string]bool{}
	for _, k := range f.Names() {
		name, ok := strings.CutPrefix(k, peftPrefix)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("unexpected key %q (peft keys start with %q)", k, peftPrefix))
		case strings.HasSuffix(name, ".lora_A.weight") || strings.HasSuffix(name, ".lora_B.weight"):
		case byName[name] != nil:
			full[name] = true
		default:
			problems = append(problems, fmt.Sprintf("unexpected key %q (no adapter or model parameter %q)", k, name))
		}
	}
	for name := range full {
		if p := byName[name]; !p.Head {
			cfg.Train = append(cfg.Train, name[:max(0, strings.LastIndex(name, "."))])
		}
	}
	sort.Strings(cfg.Train)
	cfg.Adam, cfg.Seed = adam, seed
	if len(problems) > 0 {
		return nil, info, fmt.Errorf("blockllm: lora: %s: %s", path, strings.Join(problems, "; "))
	}
	o, err := NewLoRA(m, cfg)
	if err != nil {
		return nil, info, err
	}
	want := map[string]*nn.Param{}
	for _, p := range o.store.Parameters() {
		want[peftPrefix+p.Name] = p
	}
	for _, p := range o.full {
		if full[p.Name] {
			want[peftPrefix+p.Name] = p
		}
	}
	for _, k := range f.Names() {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected key %q (not an adapter of the targets %s)", k, targetDesc(cfg)))
		}
	}
	for _, k := range sortedKeys(want) {
		p := want[k]
		info, ok := f.Info(k)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing key %q", k))
		case fmt.Sprint(info.Shape) != fmt.Sprint(p.T.Shape()):
			problems = append(problems, fmt.Sprintf("key %q has shape %v, want %v", k, info.Shape, p.T.Shape()))
		}
	}
	if len(problems) > 0 {
		o.Close()
		return nil, info, fmt.Errorf("blockllm: lora: %s: %s", path, strings.Join(problems, "; "))
	}
	err = catch(func() error {
		return torch.WithScope(func(s *torch.Scope) error {
			for _, k := range sortedKeys(want) {
				ti, _ := f.Info(k)
				dt, err := nn.ToTorch(ti.DType)
				if err != nil {
					return fmt.Errorf("%s: key %q: %w", path, k, err)
				}
				if !dt.IsFloat() {
					return fmt.Errorf("%s: key %q has dtype %v, want a float type", path, k, dt)
				}
				data, err := f.Data(k)
				if err != nil {
					return err
				}
				want[k].T.CopyFrom(s.FromBytes(data, ti.Shape, dt))
			}
			return nil
		})
	})
	if err != nil {
		o.Close()
		return nil, info, err
	}
	return o, info, nil
}

func targetDesc(c LoRAConfig) string {
	if c.TargetRegex != "" {
		return fmt.Sprintf("%q", c.TargetRegex)
	}
	return strings.Join(c.Targets, ",")
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
