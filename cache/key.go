package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync"

	"golang.org/x/sys/cpu"
)

// Key names a token in the cache: a 128-bit pseudorandom function of the
// token string under a secret drawn when the process starts (bytes 0-15),
// then the token's hint (bytes 16-23, see [Keyer.Hint]).
//
// A hit serves the answer stored under the presented token's Key, so two
// tokens with one Key would share an answer. Keys must therefore be
// collision-free even against someone who chooses tokens to collide with a
// verified one, which a fast unkeyed hash is not. SHA-256 is, but it costs a
// hit about 0.5 µs per 800-byte token (6% of the hit's CPU in a profile under
// load); a keyed universal hash followed by a block cipher costs 0.1 µs and
// is a PRF with 128-bit output as long as its keys stay secret. The hint
// adds nothing to that: it only says where to look.
type Key [24]byte

// hint is the Key's hint, which picks its front-table slot.
func (k *Key) hint() uint64 { return binary.LittleEndian.Uint64(k[16:]) }

// Keyer computes Keys. It is safe for concurrent use.
type Keyer struct {
	// With hardware AES and carry-less multiply (where Go's GHASH is
	// constant time): Key(t) = AES_k2(GMAC_k1(t)) with a fixed nonce. GHASH
	// is a universal hash: two distinct tokens of at most 8 KiB collide with
	// probability at most 2^-119 over the secret H, whatever the tokens. The
	// GMAC tag is never shown, but the map slot a key selects could leak a
	// few of its bits through timing, and GHASH is linear in H, so those
	// bits could add up to H; encrypting the tag with an independent key
	// makes every bit of the Key pseudorandom and useless for that.
	gmac cipher.AEAD
	prp  cipher.Block
	// Without that hardware, or in FIPS 140-only mode, which refuses a
	// fixed GCM nonce: the first 16 bytes of SHA-256.

	// seed keys the hint, so that where a token's slot lies cannot be
	// known outside the process.
	seed [2]uint64
}

var (
	zeroNonce [12]byte
	// scratch holds the GMAC tag and its encryption: calls through an
	// interface (cipher.AEAD) make their buffers escape, and a pool keeps
	// that from costing an allocation per Key.
	scratch = sync.Pool{New: func() any { return new([32]byte) }}
)

// NewKeyer draws fresh secret keys.
func NewKeyer() (*Keyer, error) {
	var secret [48]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, fmt.Errorf("cache: drawing a key: %w", err)
	}
	seed := [2]uint64{binary.LittleEndian.Uint64(secret[32:]), binary.LittleEndian.Uint64(secret[40:])}
	if !hasFastGHASH() {
		return &Keyer{seed: seed}, nil
	}
	b1, err := aes.NewCipher(secret[:16])
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	gmac, err := cipher.NewGCM(b1)
	if err != nil { // FIPS 140-only mode
		return &Keyer{seed: seed}, nil
	}
	prp, err := aes.NewCipher(secret[16:])
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Keyer{gmac: gmac, prp: prp, seed: seed}, nil
}

// hasFastGHASH reports whether Go's AES-GCM runs on constant-time hardware
// instructions here.
func hasFastGHASH() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	}
	return false
}

// Keyed reports whether k uses the keyed hash rather than SHA-256.
func (k *Keyer) Keyed() bool { return k.gmac != nil }

// Key returns tok's Key.
func (k *Keyer) Key(tok []byte) (key Key) {
	binary.LittleEndian.PutUint64(key[16:], k.Hint(tok))
	if k.gmac == nil {
		d := sha256.Sum256(tok)
		copy(key[:16], d[:16])
		return key
	}
	b := scratch.Get().(*[32]byte)
	k.gmac.Seal(b[:0], zeroNonce[:], nil, tok)
	k.prp.Encrypt(b[16:], b[:16])
	copy(key[:16], b[16:])
	scratch.Put(b)
	return key
}

// Hint returns what picks tok's front-table slot, the last 8 bytes of its
// Key, in nanoseconds: a caller can start loading the slot (see
// [Cache.Prefetch]) before it computes the Key, whose 0.2 µs then hide
// the slot's memory miss, which under load would otherwise follow it.
//
// It mixes the token's last 16 bytes, and nothing else, with a secret seed.
// A JWT ends in its signature, which only the issuer chooses and which is
// random to everyone else, and only verified tokens enter the front table,
// so those bytes spread slots as well as the whole token would. No answer
// depends on the hint: a hit still needs the whole Key to match. As the
// length is left out, any bytes that end in a token's last 16 have its
// hint: a server can compute it from the end of a request it has just
// read, before it has found where the token starts.
func (k *Keyer) Hint(tok []byte) uint64 {
	var t [16]byte
	copy(t[:], tok[max(len(tok)-16, 0):])
	x := binary.LittleEndian.Uint64(t[:8]) ^ k.seed[0]
	y := binary.LittleEndian.Uint64(t[8:]) ^ k.seed[1]
	hi, lo := bits.Mul64(x, y|1)
	return hi ^ lo
}
