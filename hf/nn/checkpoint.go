package nn

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/hf/safetensors"
	"github.com/blockllm/blockllm-go/torch"
)

// Spec describes one parameter a model expects: its Hugging Face name, shape, layer and
// role, and how to initialise it for a new (untrained) model.
type Spec struct {
	Name  string
	Shape []int64
	Layer int
	Head  bool
	Embed bool
	Init  InitKind
	Std   float64 // for InitNormal
}

// InitKind is how a new parameter is initialised (as transformers' _init_weights does).
type InitKind int

// Initialisations.
const (
	InitNormal InitKind = iota // N(0, Std)
	InitZeros
	InitOnes
)

// ToTorch maps a safetensors dtype to a torch dtype.
func ToTorch(d safetensors.DType) (torch.DType, error) {
	switch d {
	case safetensors.F32:
		return torch.F32, nil
	case safetensors.BF16:
		return torch.BF16, nil
	case safetensors.F16:
		return torch.F16, nil
	case safetensors.F64:
		return torch.F64, nil
	case safetensors.I64:
		return torch.I64, nil
	case safetensors.I32:
		return torch.I32, nil
	case safetensors.U8:
		return torch.U8, nil
	case safetensors.I8:
		return torch.I8, nil
	case safetensors.BOOL:
		return torch.Bool, nil
	}
	return 0, fmt.Errorf("nn: safetensors dtype %v has no torch equivalent here", d)
}

// FromTorch maps a torch dtype to a safetensors dtype.
func FromTorch(d torch.DType) (safetensors.DType, error) {
	switch d {
	case torch.F32:
		return safetensors.F32, nil
	case torch.BF16:
		return safetensors.BF16, nil
	case torch.F16:
		return safetensors.F16, nil
	case torch.F64:
		return safetensors.F64, nil
	case torch.I64:
		return safetensors.I64, nil
	case torch.I32:
		return safetensors.I32, nil
	case torch.U8:
		return safetensors.U8, nil
	case torch.I8:
		return safetensors.I8, nil
	case torch.Bool:
		return safetensors.BOOL, nil
	}
	return 0, fmt.Errorf("nn: torch dtype %v has no safetensors equivalent", d)
}

// DTypeFromConfig maps a config.json dtype string ("float32", "bfloat16", "float16",
// "float64", "") to a torch dtype; "" gives F32.
func DTypeFromConfig(s string) (torch.DType, error) {
	if s == "" {
		return torch.F32, nil
	}
	return torch.ParseDType(s)
}

// ConfigDType is the config.json name of a float dtype.
func ConfigDType(d torch.DType) string { return d.String() }

// InitParams creates every parameter of specs on dev in dtype dt, initialised as the
// spec says, drawing from g (seeded) in float32 on g's device.
func (p *Params) InitParams(specs []Spec, dt torch.DType, dev torch.Device, g *torch.Generator) (err error) {
	draw := torch.CPU
	if g != nil {
		draw = g.Device()
	}
	return torch.Try(func() {
		for _, sp := range specs {
			s := torch.NewScope()
			var t *torch.Tensor
			switch sp.Init {
			case InitZeros:
				t = s.Zeros(sp.Shape, dt, dev)
			case InitOnes:
				t = s.Ones(sp.Shape, dt, dev)
			default:
				// draw in f32 on g's device (InitSeeded: the CPU, the same values on every
				// device), then convert
				t = s.Randn(sp.Shape, torch.F32, draw, g).MulScalar(sp.Std).ToDevice(dt, dev)
			}
			q := p.Add(sp.Name, t.Contiguous().MoveTo(p.Store), sp.Layer)
			q.Head, q.Embed = sp.Head, sp.Embed
			s.Close()
		}
	})
}

// InitSeeded is InitParams drawing from a CPU generator seeded with seed (the same
// values on every device).
func (p *Params) InitSeeded(specs []Spec, dt torch.DType, dev torch.Device, seed uint64) error {
	g := torch.NewGenerator(seed, torch.CPU)
	defer g.Close()
	return p.InitParams(specs, dt, dev, g)
}

// LoadOptions adjust LoadParams.
type LoadOptions struct {
	// Ignore names checkpoint tensors the model does not use (e.g. rotary inv_freq
	// buffers, a pooler): they are not reported as unexpected.
	Ignore func(key string) bool
	// Key maps a parameter name to its checkpoint key (nil: the same name).
	Key func(name string) string
	// InitMissing names parameters that may be absent (a new task head): they are
	// initialised from their Spec with Gen and listed in the result.
	InitMissing func(name string) bool
	// Fresh names parameters initialised from their Spec with Gen even when the
	// checkpoint has them (a task head of another size); their checkpoint tensors are
	// not reported as unexpected. They are listed in the result.
	Fresh func(name string) bool
	Gen   *torch.Generator
}

// LoadParams reads every parameter of specs from a checkpoint (a directory with
// model.safetensors or a sharded index), converting to dt on dev. All missing,
// mis-shaped and unexpected keys are reported in one error. It returns the names of
// parameters that were initialised because o.InitMissing allowed their absence.
func (p *Params) LoadParams(dir string, specs []Spec, dt torch.DType, dev torch.Device, o LoadOptions) ([]string, error) {
	src, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	key := func(n string) string {
		if o.Key != nil {
			return o.Key(n)
		}
		return n
	}
	want := map[string]bool{}
	var missing, badShape, unexpected, initialised []string
	fresh := map[string]bool{}
	for _, sp := range specs {
		k := key(sp.Name)
		want[k] = true
		if o.Fresh != nil && o.Fresh(sp.Name) {
			fresh[sp.Name] = true
			initialised = append(initialised, sp.Name)
			continue
		}
		info, ok := src.Info(k)
		if !ok {
			if o.InitMissing != nil && o.InitMissing(sp.Name) {
				initialised = append(initialised, sp.Name)
			} else {
				missing = append(missing, k)
			}
			continue
		}
		if fmt.Sprint(info.Shape) != fmt.Sprint(sp.Shape) {
			badShape = append(badShape, fmt.Sprintf("%s: checkpoint %v, model %v", k, info.Shape, sp.Shape))
		}
		if _, err := ToTorch(info.DType); err != nil {
			badShape = append(badShape, fmt.Sprintf("%s: dtype %v unsupported", k, info.DType))
		}
	}
	for _, n := range src.Names() {
		if !want[n] && (o.Ignore == nil || !o.Ignore(n)) {
			unexpected = append(unexpected, n)
		}
	}
	if len(missing)+len(badShape)+len(unexpected) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "nn: checkpoint %s does not match the model:", src.Path())
		if len(missing) > 0 {
			fmt.Fprintf(&b, "\n  missing keys (%d): %s", len(missing), strings.Join(missing, ", "))
		}
		if len(badShape) > 0 {
			fmt.Fprintf(&b, "\n  mis-shaped keys (%d): %s", len(badShape), strings.Join(badShape, "; "))
		}
		if len(unexpected) > 0 {
			fmt.Fprintf(&b, "\n  unexpected keys (%d): %s", len(unexpected), strings.Join(unexpected, ", "))
		}
		return nil, fmt.Errorf("%s", b.String())
	}
	err = torch.Try(func() {
		for _, sp := range specs {
			info, ok := src.Info(key(sp.Name))
			if !ok || fresh[sp.Name] { // allowed by InitMissing or asked for by Fresh
				if err := p.InitParams([]Spec{sp}, dt, dev, o.Gen); err != nil {
					panic(err)
				}
				continue
			}
			data, err := src.Data(key(sp.Name))
			if err != nil {
				panic(&torch.Error{Op: "load", Msg: err.Error()})
			}
			tdt, _ := ToTorch(info.DType)
			s := torch.NewScope()
			// FromBytes copies out of the mapping; storage is reference-counted, so the
			// moved handle keeps it alive after the scope closes.
			t := s.FromBytes(data, info.Shape, tdt).ToDevice(dt, dev).Contiguous()
			q := p.Add(sp.Name, t.MoveTo(p.Store), sp.Layer)
			q.Head, q.Embed = sp.Head, sp.Embed
			s.Close()
		}
	})
	return initialised, err
}

// SaveParams writes the parameters as safetensors in dir (sharded over maxShardBytes,
// 0: 5 GB as transformers does), in dtype dt (0: each tensor's own dtype), with
// metadata {"format": "pt"}.
func (p *Params) SaveParams(dir string, dt torch.DType, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		maxShardBytes = 5_000_000_000
	}
	var ts []safetensors.Tensor
	for _, q := range p.list {
		st, err := SafetensorsTensor(q.Name, q.T, dt)
		if err != nil {
			return err
		}
		ts = append(ts, st)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	_, err := safetensors.SaveSharded(dir, ts, maxShardBytes, map[string]string{"format": "pt"})
	return err
}

// SafetensorsTensor describes t for the safetensors writers under name, in dtype dt (0:
// t's own dtype). Its bytes are produced when the file is written: t is converted and
// moved to the CPU one tensor at a time, so a checkpoint never holds a second copy of
// every tensor. t must stay alive until then.
func SafetensorsTensor(name string, t *torch.Tensor, dt torch.DType) (safetensors.Tensor, error) {
	if dt == 0 {
		dt = t.DType()
	}
	st, err := FromTorch(dt)
	if err != nil {
		return safetensors.Tensor{}, fmt.Errorf("nn: tensor %q: %w", name, err)
	}
	return safetensors.Tensor{Name: name, DType: st, Shape: t.Shape(), DataFunc: func(w io.Writer) error {
		var b []byte
		err := torch.Try(func() {
			s := torch.NewScope()
			defer s.Close()
			b = s.In(t).ToDevice(dt, torch.CPU).Bytes()
		})
		if err != nil {
			return fmt.Errorf("nn: tensor %q: %w", name, err)
		}
		_, err = w.Write(b)
		return err
	}}, nil
}

// ReadTensors loads every tensor of a safetensors file into s, on the CPU, in the
// file's dtypes.
func ReadTensors(s *torch.Scope, path string) (map[string]*torch.Tensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nn: %w", err)
	}
	defer f.Close()
	out := map[string]*torch.Tensor{}
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		dt, err := ToTorch(info.DType)
		if err != nil {
			return nil, fmt.Errorf("nn: %s: tensor %q: %w", path, name, err)
		}
		data, err := f.Data(name)
		if err != nil {
			return nil, fmt.Errorf("nn: %w", err)
		}
		var x *torch.Tensor
		if err := torch.Try(func() { x = s.FromBytes(data, info.Shape, dt) }); err != nil {
			return nil, fmt.Errorf("nn: %s: tensor %q: %w", path, name, err)
		}
		out[name] = x
	}
	return out, nil
}

// CopyParams copies the weights of a model directory (model.safetensors, or shards with
// model.safetensors.index.json) into the existing parameters of the same names, one
// tensor at a time. Every parameter must be present with its shape and dtype, and no
// other tensor: this is for a model's own checkpoints (resume), not for loading a
// checkpoint of another dtype (LoadParams converts).
func CopyParams(dir string, params []*Param) error {
	src, err := safetensors.OpenModel(dir)
	if err != nil {
		return fmt.Errorf("nn: %w", err)
	}
	defer src.Close()
	want := map[string]bool{}
	for _, p := range params {
		want[p.Name] = true
		info, ok := src.Info(p.Name)
		if !ok {
			return fmt.Errorf("nn: %s lacks parameter %q", dir, p.Name)
		}
		dt, err := ToTorch(info.DType)
		if err != nil || dt != p.T.DType() || fmt.Sprint(info.Shape) != fmt.Sprint(p.T.Shape()) {
			return fmt.Errorf("nn: %s: %q is %v %v, the model's is %v %v", dir, p.Name,
				info.DType, info.Shape, p.T.DType(), p.T.Shape())
		}
		data, err := src.Data(p.Name)
		if err != nil {
			return fmt.Errorf("nn: %w", err)
		}
		err = torch.WithScope(func(s *torch.Scope) error {
			x := s.FromBytes(data, info.Shape, dt)
			torch.NoGrad(func() { p.T.CopyFrom(x) })
			return nil
		})
		if err != nil {
			return fmt.Errorf("nn: %s: %q: %w", dir, p.Name, err)
		}
	}
	for _, name := range src.Names() {
		if !want[name] {
			return fmt.Errorf("nn: %s has tensor %q, which the model lacks", dir, name)
		}
	}
	return nil
}

// TokenizerFiles are the files Save copies from a model's source directory.
var TokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"tokenizer.model", "vocab.json", "merges.txt", "generation_config.json"}

// CopyTokenizer copies the tokenizer files that exist in src into dst.
func CopyTokenizer(src, dst string) error {
	if src == "" || filepath.Clean(src) == filepath.Clean(dst) {
		return nil
	}
	for _, f := range TokenizerFiles {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			return fmt.Errorf("nn: copying %s: %w", f, err)
		}
	}
	return nil
}

// CheckFits refuses, before anything is allocated, a model whose weights alone (params
// elements of dtype dt) exceed the memory available on dev, with the size it would need.
// Training needs more (gradients, optimizer state, activations); this catches
// configurations that cannot even be held. Where the device's free memory is not known
// (CUDA), only sizes beyond any machine (2^50 bytes) are refused.
func CheckFits(model string, params float64, dt torch.DType, dev torch.Device) error {
	need := params * float64(dt.Size())
	limit, known := torch.AvailableMemory(dev)
	if !known {
		limit = 1 << 50
	}
	if need <= float64(limit) {
		return nil
	}
	where := fmt.Sprintf("the %s has %s available", dev, torch.FormatBytes(limit))
	if !known {
		where = "no machine has that much"
	}
	return fmt.Errorf("%s: the model needs %s for its weights alone (%.3g parameters in %v); %s",
		model, formatHuge(need), params, dt, where)
}

// formatHuge is torch.FormatBytes for sizes that may not fit an int64.
func formatHuge(b float64) string {
	if b < 1<<62 {
		return torch.FormatBytes(int64(b))
	}
	return fmt.Sprintf("%.3g bytes", b)
}
