// Command tiles is a C2SP tlog-tiles client built on Go's own
// golang.org/x/mod/sumdb/note and tlog: it reads the log's tiles from a URL
// prefix (http://127.0.0.1:PORT/tlog/) or a folder written by
// labelcheck ledger publish-tiles, opens the checkpoint, reads records from
// entry bundles and proves them with tlog.TileHashReader.  One JSON request on
// stdin, one JSON answer on stdout; []byte fields are standard base64.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type request struct {
	Base    string  `json:"base"` // URL prefix ending in "/", or
	Dir     string  `json:"dir"`  // a published folder
	Vkey    string  `json:"vkey"`
	Old     []byte  `json:"old"` // an older signed checkpoint, for ProveTree
	Records []int64 `json:"records"`
}

type record struct {
	Index int64    `json:"index"`
	Data  []byte   `json:"data,omitempty"`
	Proof [][]byte `json:"proof,omitempty"`
	Error string   `json:"error,omitempty"`
}

type answer struct {
	Size        int64    `json:"size"`
	Root        []byte   `json:"root"`
	Records     []record `json:"records"`
	Consistency [][]byte `json:"consistency,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// source fetches a file under the log's prefix.
type source struct{ base, dir string }

func (s source) get(path string) ([]byte, error) {
	if s.dir != "" {
		return os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(path)))
	}
	resp, err := http.Get(s.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// c2spPath turns Go's tile path (tile/8/L/N[.p/W], L "data" for records)
// into the C2SP one (tile/L/N[.p/W], L "entries").
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), "tile/8/")
	if strings.HasPrefix(p, "data/") {
		p = "entries/" + strings.TrimPrefix(p, "data/")
	}
	return "tile/" + p
}

type tileReader struct{ src source }

func (r tileReader) Height() int { return 8 }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := r.src.get(c2spPath(t))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// openCheckpoint verifies a C2SP checkpoint note and returns its tree.
func openCheckpoint(msg []byte, verifiers note.Verifiers) (tlog.Tree, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return tlog.Tree{}, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return tlog.Tree{}, errors.New("checkpoint has fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return tlog.Tree{}, err
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return tlog.Tree{}, errors.New("bad root hash")
	}
	var h tlog.Hash
	copy(h[:], root)
	return tlog.Tree{N: size, Hash: h}, nil
}

// entry reads record i from its entry bundle (uint16 big-endian length, bytes).
func entry(src source, tree tlog.Tree, i int64) ([]byte, error) {
	n := i / 256
	w := tree.N - n*256
	if w > 256 {
		w = 256
	}
	bundle, err := src.get(c2spPath(tlog.Tile{H: 8, L: -1, N: n, W: int(w)}))
	if err != nil {
		return nil, err
	}
	for k := int64(0); len(bundle) >= 2; k++ {
		size := int(bundle[0])<<8 | int(bundle[1])
		if len(bundle) < 2+size {
			break
		}
		if k == i%256 {
			return bundle[2 : 2+size], nil
		}
		bundle = bundle[2+size:]
	}
	return nil, fmt.Errorf("record %d is not in its entry bundle", i)
}

func hashes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i][:]...)
	}
	return out
}

func run(req request) answer {
	src := source{base: req.Base, dir: req.Dir}
	v, err := note.NewVerifier(req.Vkey)
	if err != nil {
		return answer{Error: err.Error()}
	}
	verifiers := note.VerifierList(v)
	msg, err := src.get("checkpoint")
	if err != nil {
		return answer{Error: err.Error()}
	}
	tree, err := openCheckpoint(msg, verifiers)
	if err != nil {
		return answer{Error: "checkpoint: " + err.Error()}
	}
	ans := answer{Size: tree.N, Root: tree.Hash[:]}
	reader := tlog.TileHashReader(tree, tileReader{src})
	for _, i := range req.Records {
		rec := record{Index: i}
		data, err := entry(src, tree, i)
		if err == nil {
			var proof tlog.RecordProof
			if proof, err = tlog.ProveRecord(tree.N, i, reader); err == nil {
				if err = tlog.CheckRecord(proof, tree.N, tree.Hash, i, tlog.RecordHash(data)); err == nil {
					rec.Data, rec.Proof = data, hashes(proof)
				}
			}
		}
		if err != nil {
			rec.Error = err.Error()
		}
		ans.Records = append(ans.Records, rec)
	}
	if req.Old != nil {
		old, err := openCheckpoint(req.Old, verifiers)
		if err != nil {
			ans.Error = "old checkpoint: " + err.Error()
			return ans
		}
		proof, err := tlog.ProveTree(tree.N, old.N, reader)
		if err == nil {
			err = tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash)
		}
		if err != nil {
			ans.Error = "consistency: " + err.Error()
			return ans
		}
		ans.Consistency = hashes(proof)
	}
	return ans
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(run(req)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
