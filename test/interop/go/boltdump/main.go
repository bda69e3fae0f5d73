// Command boltdump opens a bbolt file read-only, runs bbolt's own consistency checker and prints
// every problem it reports, then the whole content of the file, as one JSON document on stdout.
//
// It exists so boltkv's tests can ask the reference implementation two questions about a file
// boltkv wrote: "is it consistent?" and "what does it contain?". Bytes are printed as lowercase
// hex so keys and values survive JSON exactly; sequences are decimal strings because a u64 does
// not fit a JSON number.
//
// Usage: boltdump <file>
// Exit status: 0 when the file opened (problems, if any, are in the JSON), 2 when it did not.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

type entry struct {
	K      string  `json:"k"`
	V      *string `json:"v,omitempty"`
	Bucket *bucket `json:"bucket,omitempty"`
}

type bucket struct {
	Seq     string  `json:"seq"`
	Entries []entry `json:"entries"`
}

type dump struct {
	Problems []string `json:"problems"`
	PageSize int      `json:"pageSize"`
	TxID     int      `json:"txid"`
	Buckets  []entry  `json:"buckets"`
}

// walk copies a bucket's content in cursor order. bbolt's checker in this version does not look
// at key order, so the walk reports keys that are not strictly increasing itself.
func walk(b *bolt.Bucket, path string, problems *[]string) *bucket {
	out := &bucket{Seq: strconv.FormatUint(b.Sequence(), 10), Entries: []entry{}}
	var prev []byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			*problems = append(*problems, fmt.Sprintf("bucket %s: key %x not after %x", path, k, prev))
		}
		prev = append(prev[:0:0], k...)
		e := entry{K: hex.EncodeToString(k)}
		if v == nil {
			child := b.Bucket(k)
			if child == nil {
				*problems = append(*problems, fmt.Sprintf("bucket %s: key %x has nil value but is no bucket", path, k))
				continue
			}
			e.Bucket = walk(child, path+"/"+e.K, problems)
		} else {
			s := hex.EncodeToString(v)
			e.V = &s
		}
		out.Entries = append(out.Entries, e)
	}
	return out
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: boltdump <file>")
		os.Exit(2)
	}
	db, err := bolt.Open(os.Args[1], 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	defer db.Close()
	d := dump{Problems: []string{}, Buckets: []entry{}, PageSize: db.Info().PageSize}
	err = db.View(func(tx *bolt.Tx) error {
		d.TxID = tx.ID()
		for e := range tx.Check() {
			d.Problems = append(d.Problems, e.Error())
		}
		var prev []byte
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if prev != nil && bytes.Compare(prev, name) >= 0 {
				d.Problems = append(d.Problems, fmt.Sprintf("root: bucket %x not after %x", name, prev))
			}
			prev = append(prev[:0:0], name...)
			k := hex.EncodeToString(name)
			d.Buckets = append(d.Buckets, entry{K: k, Bucket: walk(b, k, &d.Problems)})
			return nil
		})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "view:", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(d); err != nil {
		fmt.Fprintln(os.Stderr, "encode:", err)
		os.Exit(2)
	}
}
