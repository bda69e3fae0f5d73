// Command boltwrite builds a bbolt file from a JSON spec read on stdin, so boltkv's tests can
// open files that the reference implementation wrote.
//
// The spec is a list of transactions, each a list of operations applied in order inside one
// db.Update. Buckets are addressed by a path of hex names from the top level. The "fill"
// operation generates many keys without shipping them through JSON; boltkv's test helpers
// generate the same bytes with the same rule (test/support/interop-spec.ts).
//
// Usage: boltwrite <file> < spec.json
package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

type op struct {
	Op       string   `json:"op"`
	Path     []string `json:"path"`
	Name     string   `json:"name"`
	K        string   `json:"k"`
	V        string   `json:"v"`
	N        string   `json:"n"`
	Prefix   string   `json:"prefix"`
	Start    uint32   `json:"start"`
	Count    uint32   `json:"count"`
	ValueLen int      `json:"valueLen"`
	Seed     uint32   `json:"seed"`
}

type spec struct {
	PageSize       int    `json:"pageSize"`
	NoFreelistSync bool   `json:"noFreelistSync"`
	Freelist       string `json:"freelist"`
	Txs            [][]op `json:"txs"`
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		fail(fmt.Errorf("bad hex %q: %w", s, err))
	}
	return b
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "boltwrite:", err)
	os.Exit(1)
}

// fillKey and fillValue are the generation rule shared with the TypeScript side.
func fillKey(prefix []byte, i uint32) []byte {
	k := make([]byte, len(prefix)+4)
	copy(k, prefix)
	binary.BigEndian.PutUint32(k[len(prefix):], i)
	return k
}

func fillValue(i uint32, n int, seed uint32) []byte {
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i*31 + uint32(j)*7 + seed)
	}
	return v
}

func resolve(tx *bolt.Tx, path []string) (*bolt.Bucket, error) {
	if len(path) == 0 {
		return nil, errors.New("empty bucket path")
	}
	b := tx.Bucket(unhex(path[0]))
	for _, p := range path[1:] {
		if b == nil {
			break
		}
		b = b.Bucket(unhex(p))
	}
	if b == nil {
		return nil, fmt.Errorf("no bucket at %v", path)
	}
	return b, nil
}

func apply(tx *bolt.Tx, o op) error {
	switch o.Op {
	case "createBucket", "createBucketIfNotExists", "deleteBucket":
		name := unhex(o.Name)
		if len(o.Path) == 0 {
			switch o.Op {
			case "createBucket":
				_, err := tx.CreateBucket(name)
				return err
			case "createBucketIfNotExists":
				_, err := tx.CreateBucketIfNotExists(name)
				return err
			default:
				return tx.DeleteBucket(name)
			}
		}
		b, err := resolve(tx, o.Path)
		if err != nil {
			return err
		}
		switch o.Op {
		case "createBucket":
			_, err = b.CreateBucket(name)
		case "createBucketIfNotExists":
			_, err = b.CreateBucketIfNotExists(name)
		default:
			err = b.DeleteBucket(name)
		}
		return err
	}
	b, err := resolve(tx, o.Path)
	if err != nil {
		return err
	}
	switch o.Op {
	case "put":
		return b.Put(unhex(o.K), unhex(o.V))
	case "delete":
		return b.Delete(unhex(o.K))
	case "setSequence":
		n, err := strconv.ParseUint(o.N, 10, 64)
		if err != nil {
			return err
		}
		return b.SetSequence(n)
	case "nextSequence":
		_, err := b.NextSequence()
		return err
	case "fill":
		prefix := unhex(o.Prefix)
		for i := o.Start; i < o.Start+o.Count; i++ {
			if err := b.Put(fillKey(prefix, i), fillValue(i, o.ValueLen, o.Seed)); err != nil {
				return err
			}
		}
		return nil
	case "unfill":
		prefix := unhex(o.Prefix)
		for i := o.Start; i < o.Start+o.Count; i++ {
			if err := b.Delete(fillKey(prefix, i)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown op %q", o.Op)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: boltwrite <file> < spec.json")
		os.Exit(2)
	}
	var s spec
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		fail(err)
	}
	opts := &bolt.Options{PageSize: s.PageSize, NoFreelistSync: s.NoFreelistSync}
	if s.Freelist == "hashmap" {
		opts.FreelistType = bolt.FreelistMapType
	} else {
		opts.FreelistType = bolt.FreelistArrayType
	}
	db, err := bolt.Open(os.Args[1], 0o600, opts)
	if err != nil {
		fail(err)
	}
	for i, ops := range s.Txs {
		err := db.Update(func(tx *bolt.Tx) error {
			for j, o := range ops {
				if err := apply(tx, o); err != nil {
					return fmt.Errorf("tx %d op %d (%s): %w", i, j, o.Op, err)
				}
			}
			return nil
		})
		if err != nil {
			fail(err)
		}
	}
	if err := db.Close(); err != nil {
		fail(err)
	}
}
