// Command bbolt-bench runs boltkv's engine benchmark workloads against Go's bbolt, so the two
// engines are measured on the same machine, the same keys and the same sequence of operations.
//
// Keys and values are generated exactly as bench/lib/engine-workloads.ts generates them (the same
// 32-bit PRNG, the same shuffle), so both sides load identical data in an identical order.
//
// It prints one JSON object per line on stdout, one per workload, with the fields the TypeScript
// side reads: workload, opsPerSec, p50Us, p99Us, ops, totalMs, note.
//
// Built in GOPATH mode against Debian's bbolt package:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o bbolt-bench .
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketName = []byte("bench")

// mulberry32 is a tiny 32-bit PRNG; the TypeScript side implements the same function so both
// programs draw the same sequence from the same seed.
type mulberry32 struct{ a uint32 }

func (m *mulberry32) next() uint32 {
	m.a += 0x6d2b79f5
	t := m.a
	t = (t ^ (t >> 15)) * (t | 1)
	t ^= t + (t^(t>>7))*(t|61)
	return t ^ (t >> 14)
}

// below returns a value in [0, n) the way the TypeScript side does: floor(next / 2^32 * n).
func (m *mulberry32) below(n int) int {
	return int(float64(m.next()) / 4294967296.0 * float64(n))
}

const (
	seedOrder  = 1
	seedValues = 2
	seedReads  = 3
	seedWrites = 4
	valuePool  = 65536
	valueSize  = 100
)

func shuffled(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i)
	}
	r := &mulberry32{seedOrder}
	for i := n - 1; i > 0; i-- {
		j := r.below(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return out
}

var pool = func() []byte {
	r := &mulberry32{seedValues}
	b := make([]byte, valuePool)
	for i := 0; i < valuePool; i += 4 {
		binary.LittleEndian.PutUint32(b[i:], r.next())
	}
	return b
}()

func key(i uint32) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(i))
	return k
}

func value(i uint32) []byte {
	off := int((uint64(i) * 101) % uint64(valuePool-valueSize))
	return pool[off : off+valueSize]
}

type result struct {
	Workload  string  `json:"workload"`
	OpsPerSec float64 `json:"opsPerSec"`
	P50Us     float64 `json:"p50Us,omitempty"`
	P99Us     float64 `json:"p99Us,omitempty"`
	Ops       int     `json:"ops"`
	TotalMs   float64 `json:"totalMs"`
	Note      string  `json:"note,omitempty"`
}

func emit(r result) {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	idx := int(p * float64(len(sorted)-1))
	return float64(sorted[idx].Nanoseconds()) / 1e3
}

func latencies(workload string, samples []time.Duration, total time.Duration, note string) result {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	return result{
		Workload:  workload,
		OpsPerSec: float64(len(samples)) / total.Seconds(),
		P50Us:     percentile(samples, 0.5),
		P99Us:     percentile(samples, 0.99),
		Ops:       len(samples),
		TotalMs:   float64(total.Nanoseconds()) / 1e6,
		Note:      note,
	}
}

func openDB(path string) *bolt.DB {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		fail(err)
	}
	return db
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bbolt-bench:", err)
	os.Exit(2)
}

// loadOneTxn puts every key in one transaction. bbolt splits nodes only at commit, so random
// inserts into one ever-growing node cost O(n) each; the cap stops the run and reports how far
// it got, because the full load would take far longer than the benchmark is meant to.
func loadOneTxn(dir string, order []uint32, limit time.Duration) {
	path := filepath.Join(dir, "load1.db")
	db := openDB(path)
	defer os.Remove(path)
	defer db.Close()
	start := time.Now()
	done := 0
	capped := false
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
		for i, k := range order {
			if err := b.Put(key(k), value(k)); err != nil {
				return err
			}
			done = i + 1
			if done%1000 == 0 && time.Since(start) > limit {
				capped = true
				break
			}
		}
		return nil
	})
	if err != nil {
		fail(err)
	}
	total := time.Since(start)
	note := ""
	if capped {
		note = fmt.Sprintf("stopped after %.0f s: %d of %d keys (node splits only at commit: quadratic)", limit.Seconds(), done, len(order))
	}
	emit(result{Workload: "load, 1 txn", OpsPerSec: float64(done) / total.Seconds(), Ops: done, TotalMs: float64(total.Nanoseconds()) / 1e6, Note: note})
}

func loadChunked(db *bolt.DB, order []uint32, chunk int) {
	start := time.Now()
	for lo := 0; lo < len(order); lo += chunk {
		hi := lo + chunk
		if hi > len(order) {
			hi = len(order)
		}
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketName)
			if err != nil {
				return err
			}
			for _, k := range order[lo:hi] {
				if err := b.Put(key(k), value(k)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			fail(err)
		}
	}
	total := time.Since(start)
	label := fmt.Sprintf("%d", chunk)
	if chunk >= 1000 && chunk%1000 == 0 {
		label = fmt.Sprintf("%dk", chunk/1000)
	}
	emit(result{Workload: "load, " + label + "/txn", OpsPerSec: float64(len(order)) / total.Seconds(), Ops: len(order), TotalMs: float64(total.Nanoseconds()) / 1e6})
}

// timed runs op until the budget is spent (and at least minOps times), timing each call.
func timed(budget time.Duration, minOps int, op func()) ([]time.Duration, time.Duration) {
	samples := make([]time.Duration, 0, 1<<16)
	start := time.Now()
	for {
		t0 := time.Now()
		op()
		samples = append(samples, time.Since(t0))
		if len(samples) >= minOps && time.Since(start) > budget {
			break
		}
	}
	return samples, time.Since(start)
}

// memoryNote reports this process's resident set (which counts the mmap'd file pages it has
// touched) and Go heap in use, as the TypeScript side reports RSS and heap for its engines.
func memoryNote() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := "?"
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				var kb int
				if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d kB", &kb); err == nil {
					rss = fmt.Sprintf("%.1f", float64(kb)/1024)
				}
			}
		}
	}
	return fmt.Sprintf("rss %s MiB, heap in use %.1f MiB (at the end of the reads)", rss, float64(ms.HeapInuse)/(1<<20))
}

// getsPerSample gets are timed together and each sample divided by it, as the TypeScript side
// does (GETS_PER_SAMPLE in bench/lib/engine-workloads.ts): one get is near the timer's resolution.
const getsPerSample = 10

func gets(db *bolt.DB, n int, budget time.Duration) {
	r := &mulberry32{seedReads}
	var samples []time.Duration
	var total time.Duration
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		samples, total = timed(budget, 1000, func() {
			for i := 0; i < getsPerSample; i++ {
				if b.Get(key(uint32(r.below(n)))) == nil {
					fail(fmt.Errorf("a loaded key is missing"))
				}
			}
		})
		return nil
	})
	if err != nil {
		fail(err)
	}
	for i := range samples {
		samples[i] /= getsPerSample
	}
	res := latencies("get (random)", samples, total, fmt.Sprintf("one read txn; %d gets per timed sample; each value checked non-nil, its bytes not read", getsPerSample))
	res.OpsPerSec *= getsPerSample
	res.Ops *= getsPerSample
	emit(res)
}

// rangeSink keeps the range loop's reads of each entry from being optimised away.
var rangeSink int

func ranges(db *bolt.DB, n int, budget time.Duration) {
	r := &mulberry32{seedReads + 100}
	var samples []time.Duration
	var total time.Duration
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		samples, total = timed(budget, 200, func() {
			c := b.Cursor()
			// Seek, then Next until 100 entries are read (no Next after the last one), the
			// same number of cursor moves the TypeScript side makes. Each entry's key's last
			// byte and value's length are read, as the TypeScript visitor reads them.
			k, v := c.Seek(key(uint32(r.below(n - 100))))
			seen := 0
			for k != nil {
				seen++
				rangeSink += int(k[len(k)-1]) + len(v)
				if seen == 100 {
					break
				}
				k, v = c.Next()
			}
			if seen != 100 {
				fail(fmt.Errorf("range returned %d keys", seen))
			}
		})
		return nil
	})
	if err != nil {
		fail(err)
	}
	emit(latencies("range 100 (cursor)", samples, total, "one read txn; Seek then Next, each entry's key's last byte and value length read; "+memoryNote()))
}

func durablePuts(db *bolt.DB, n int, budget time.Duration) {
	r := &mulberry32{seedWrites}
	samples, total := timed(budget, 50, func() {
		k := uint32(r.below(n))
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketName).Put(key(k), value(k+1)) }); err != nil {
			fail(err)
		}
	})
	emit(latencies("put, durable commit", samples, total, "db.Update, fdatasync"))
}

// batchedPuts runs `callers` goroutines, each calling db.Batch with one put until `total` puts
// are done; bbolt merges concurrent Batch calls into one transaction.
func batchedPuts(db *bolt.DB, n, callers, total int) {
	r := &mulberry32{seedWrites + 1}
	ks := make([]uint32, total)
	for i := range ks {
		ks[i] = uint32(r.below(n))
	}
	samples := make([]time.Duration, total)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= total {
					return
				}
				k := ks[i]
				t0 := time.Now()
				err := db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketName).Put(key(k), value(k+2)) })
				samples[i] = time.Since(t0)
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	emit(latencies(fmt.Sprintf("put, batched (%d callers)", callers), samples, elapsed,
		fmt.Sprintf("db.Batch, max %d per txn, delay %s", db.MaxBatchSize, db.MaxBatchDelay)))
}

func main() {
	dir := flag.String("dir", "", "directory for the database files (required)")
	keys := flag.Int("keys", 1000000, "number of keys")
	chunk := flag.Int("chunk", 10000, "keys per transaction for the chunked load")
	budgetMs := flag.Int("time", 1000, "time budget per timed workload, ms")
	loadCapS := flag.Int("load1-cap", 60, "seconds after which the one-transaction load stops (0: skip it)")
	callers := flag.Int("callers", 1000, "concurrent callers for batched puts")
	batchTotal := flag.Int("batch-puts", 20000, "puts issued by the batched-put workload")
	flag.Parse()
	if *dir == "" || *keys < 200 {
		fmt.Fprintln(os.Stderr, "usage: bbolt-bench -dir DIR [-keys N>=200] [-chunk N] [-time MS] [-load1-cap S] [-callers N] [-batch-puts N]")
		os.Exit(2)
	}
	budget := time.Duration(*budgetMs) * time.Millisecond
	order := shuffled(*keys)

	// A cap of 0 skips the one-transaction load (the TypeScript side's --no-load1).
	if *loadCapS > 0 {
		loadOneTxn(*dir, order, time.Duration(*loadCapS)*time.Second)
	}

	path := filepath.Join(*dir, "main.db")
	db := openDB(path)
	defer os.Remove(path)
	defer db.Close()
	loadChunked(db, order, *chunk)
	gets(db, *keys, budget)
	ranges(db, *keys, budget)
	durablePuts(db, *keys, budget)
	batchedPuts(db, *keys, *callers, *batchTotal)
}
