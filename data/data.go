// Package data embeds the project's small demo data sets, so that
// `go run ./cmd/pretrain` and `go run ./cmd/finetune` work with no flags and
// no downloads:
//
//   - fortunes/: C4-style JSON-lines shards of Debian's fortune cookie texts
//     for causal-LM pretraining (FortunesTrain, FortunesValidation), read
//     with package eval/c4;
//   - demo-glue/SST-2/: a binary sentence classification task in the GLUE
//     SST-2 layout (label 1: the fortune comes from a computing category;
//     label 0: from the people/love/literature/wisdom categories), read with
//     package eval/glue as task "sst2" (DemoGLUETask);
//   - models/: the demo models' configurations (LlamaDemoConfig, RobertaDemoConfig);
//   - tokenizers/: the tiny tokenizers trained on the fortunes text
//     (RobertaTinyTokenizer, vocabulary 1000, and LlamaTinyTokenizer,
//     vocabulary 1024), copies of testdata/hf/roberta-tiny-tok and
//     testdata/hf/llama-tiny-tok, for the demo models.
//
// data/README.md describes the sources and licenses, and
// scripts/make-demo-data.sh regenerates the files.
package data

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
)

// FS holds the embedded files: fortunes/..., demo-glue/... and tokenizers/... .
//
//go:embed fortunes demo-glue tokenizers models README.md
var FS embed.FS

// The demo models' config.json: a Llama of hidden size 128 with 4 layers (about 1M
// parameters) over the fortunes tokenizer's 1024 ids (LlamaTinyTokenizer), and a
// RoBERTa sequence classifier of hidden size 128 with 4 layers over the 1000 ids of
// RobertaTinyTokenizer (128 positions plus the pad offset). The commands' demos train
// them from random weights.
var (
	//go:embed models/llama-demo.json
	LlamaDemoConfig []byte
	//go:embed models/roberta-demo.json
	RobertaDemoConfig []byte
)

// File names in Fortunes().
const (
	// FortunesTrain is the pretraining shard.
	FortunesTrain = "c4-train.00000-of-00001.json.gz"
	// FortunesValidation is the held-out shard (about 5% of the fortunes,
	// chosen with c4.InValidation(text, 0.05, 0)).
	FortunesValidation = "c4-validation.00000-of-00001.json.gz"
)

// Paths in FS of the demo tokenizers (Hugging Face tokenizer.json files).
const (
	// RobertaTinyTokenizer is a RoBERTa-style byte-level BPE tokenizer
	// (RobertaProcessing: <s> A </s></s> B </s>; <pad> is 1), vocabulary 1000.
	RobertaTinyTokenizer = "tokenizers/roberta-tiny/tokenizer.json"
	// LlamaTinyTokenizer is a Llama-2-style SentencePiece BPE tokenizer with
	// byte fallback (<s> is 1, </s> is 2), vocabulary 1024.
	LlamaTinyTokenizer = "tokenizers/llama-tiny/tokenizer.json"
)

// Tokenizer returns the bytes of an embedded tokenizer.json
// (RobertaTinyTokenizer or LlamaTinyTokenizer), for tokenizer.FromJSON.
func Tokenizer(name string) ([]byte, error) {
	b, err := FS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return b, nil
}

// DemoGLUETask is the GLUE task name under which DemoGLUE is read.
const DemoGLUETask = "sst2"

func sub(dir string) fs.FS {
	f, err := fs.Sub(FS, dir)
	if err != nil {
		panic(err) // dir is a constant known to be embedded
	}
	return f
}

// Fortunes returns the fortunes directory (FortunesTrain, FortunesValidation
// and LICENSE), for example for c4.OpenFS(data.Fortunes(),
// []string{data.FortunesTrain}, nil).
func Fortunes() fs.FS { return sub("fortunes") }

// DemoGLUE returns the demo GLUE directory (SST-2/train.tsv, SST-2/dev.tsv,
// LICENSE), for example for glue.LoadFS(data.DemoGLUE(), data.DemoGLUETask,
// "train").
func DemoGLUE() fs.FS { return sub("demo-glue") }

// Materialize copies the files of fsys into dir (created if needed; files
// that already exist there are an error).
func Materialize(fsys fs.FS, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := os.CopyFS(dir, fsys); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

func tempCopy(fsys fs.FS, pattern string) (string, func(), error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", nil, fmt.Errorf("data: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := Materialize(fsys, dir); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

// DemoGLUEDir writes the demo GLUE data to a new temporary directory and
// returns it (pass it to glue.Load) with a function that removes it.
func DemoGLUEDir() (dir string, cleanup func(), err error) {
	return tempCopy(DemoGLUE(), "blockllm-demo-glue-")
}

// FortunesDir writes the fortunes shards to a new temporary directory and
// returns it (pass it to c4.Open) with a function that removes it.
func FortunesDir() (dir string, cleanup func(), err error) {
	return tempCopy(Fortunes(), "blockllm-fortunes-")
}
