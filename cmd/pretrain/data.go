package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval/c4"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

// opener opens a fresh document reader and tells which split of it to use.
type opener struct {
	open  func() (*c4.Reader, error)
	split c4.Split
	desc  string
}

func dataSources(o *options) (train, val opener, err error) {
	if o.data == "" {
		fsys := data.Fortunes()
		train = opener{func() (*c4.Reader, error) { return c4.OpenFS(fsys, []string{data.FortunesTrain}, nil) }, c4.SplitAll, "fortunes train shard"}
		val = opener{func() (*c4.Reader, error) { return c4.OpenFS(fsys, []string{data.FortunesValidation}, nil) }, c4.SplitAll, "fortunes validation shard"}
		if o.valData == "" {
			return train, val, nil
		}
	} else {
		pats := cli.SplitList(o.data)
		if len(pats) == 0 {
			return train, val, fmt.Errorf("--data: no file pattern")
		}
		train = opener{func() (*c4.Reader, error) { return c4.Open(pats, nil) }, c4.SplitAll, o.data}
	}
	if o.valData != "" {
		pats := cli.SplitList(o.valData)
		val = opener{func() (*c4.Reader, error) { return c4.Open(pats, nil) }, c4.SplitAll, o.valData}
		return train, val, nil
	}
	// Hold out a hashed fraction of the training documents.
	train.split = c4.SplitTrain
	val = opener{train.open, c4.SplitValidation, fmt.Sprintf("%.3g%% of %s", 100*o.valFraction, o.data)}
	return train, val, nil
}

// job is what the runs of every method share: the options, device and dtype, the
// tokenizer, the data and the writers.
type job struct {
	o        *options
	dev      torch.Device
	dt       torch.DType
	sched    blockllm.Schedule
	tok      *tokenizer.Tokenizer
	tokJSON  []byte
	settings map[string]string

	trainSrc  opener
	valBlocks [][]int

	info, jsonOut, stderr io.Writer // jsonOut: nil without --json
	par                   *cli.Job  // data parallelism (one rank without a launcher)
}

// packOptions are the packing options for split: blocks of --seq-len tokens with
// overlap tokens shared by consecutive blocks, <s> and </s> around each document.
func (j *job) packOptions(split c4.Split, overlap int) c4.PackOptions {
	p := c4.PackOptions{BlockLen: j.o.seqLen, Overlap: overlap, Split: split, Validation: j.o.valFraction}
	if id := j.tok.BOS(); id >= 0 {
		p.BOS = []int{id}
	}
	if id := j.tok.EOS(); id >= 0 {
		p.EOS = []int{id}
	}
	return p
}

// encode tokenizes a document in pieces (tokenizer.EncodeStream), so that a huge
// document costs the memory of its ids, not of a whole-document encoding.
func (j *job) encode(text string) ([]int, error) {
	var ids []int
	err := j.tok.EncodeStream(text, 0, func(part []int) bool {
		ids = append(ids, part...)
		return true
	})
	return ids, err
}

// prepareData opens the data sources and reads the validation blocks.
func (j *job) prepareData() error {
	train, val, err := dataSources(j.o)
	if err != nil {
		return err
	}
	j.trainSrc = train
	j.valBlocks, err = j.readValBlocks(val)
	return err
}

// readValBlocks packs up to --eval-blocks validation blocks with a one-token overlap,
// so that every token after the first is predicted exactly once.
func (j *job) readValBlocks(val opener) ([][]int, error) {
	r, err := val.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p, err := c4.NewPackerErr(r, j.encode, j.packOptions(val.split, 1))
	if err != nil {
		return nil, err
	}
	var blocks [][]int
	for len(blocks) < j.o.evalBlocks {
		b, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("validation data (%s) is too short for one block of %d tokens", val.desc, j.o.seqLen)
	}
	return blocks, nil
}

// trainData opens a fresh training stream: packed blocks, epoch after epoch, in
// batches of --batch-size on the device.
func (j *job) trainData() (*blockllm.TokenBlocks, func(), error) {
	r, err := j.trainSrc.open()
	if err != nil {
		return nil, nil, err
	}
	p, err := c4.NewPackerErr(r, j.encode, j.packOptions(j.trainSrc.split, 0))
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	e := &c4.Epochs{Packer: p, Desc: j.trainSrc.desc}
	return &blockllm.TokenBlocks{Batch: j.o.batch, Device: j.dev, NextBlock: e.Next, Position: e.Position, Seek: e.Seek,
			Rank: j.par.Rank(), Size: j.par.Size()},
		func() { r.Close() }, nil
}
