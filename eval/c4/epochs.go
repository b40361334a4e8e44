package c4

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Epochs yields the blocks of a Packer without end: at the end of the data it starts
// the next epoch from the first document. Its position (epoch and packer state) is JSON
// for checkpoints (Position and Seek fit blockllm.TokenBlocks).
type Epochs struct {
	// Packer supplies the blocks.
	Packer *Packer
	// Desc names the data in errors ("c4/en/c4-train.*.json.gz").
	Desc string

	epoch     int
	thisEpoch int64
}

type epochsState struct {
	Epoch  int   `json:"epoch"`
	Packer State `json:"packer"`
}

// Next returns the next block. Data too short for a single block is an error (rather
// than an endless loop over nothing).
func (e *Epochs) Next() ([]int, error) {
	b, err := e.Packer.Next()
	if errors.Is(err, io.EOF) {
		if e.thisEpoch == 0 {
			return nil, fmt.Errorf("c4: data (%s) is too short for one block", e.Desc)
		}
		e.epoch++
		e.thisEpoch = 0
		if err := e.Packer.Restore(State{}); err != nil {
			return nil, err
		}
		b, err = e.Packer.Next()
	}
	if err != nil {
		return nil, err
	}
	e.thisEpoch++
	return b, nil
}

// Epoch is the 0-based epoch of the last block returned.
func (e *Epochs) Epoch() int { return e.epoch }

// Position returns the epoch and packer position as JSON.
func (e *Epochs) Position() (json.RawMessage, error) {
	return json.Marshal(epochsState{Epoch: e.epoch, Packer: e.Packer.State()})
}

// Seek continues from a Position.
func (e *Epochs) Seek(raw json.RawMessage) error {
	var st epochsState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("c4: data position: %w", err)
	}
	if err := e.Packer.Restore(st.Packer); err != nil {
		return err
	}
	e.epoch, e.thisEpoch = st.Epoch, st.Packer.Blocks
	return nil
}
