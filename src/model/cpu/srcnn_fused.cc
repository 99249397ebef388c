// SRCNN on CPU as MindSpore AOT custom operators (ops.Custom, func_type="aot"; src/model/cpu/fused.py builds and
// calls them; tests/integration/test_fused_cpu.py and tests/integration/test_network.py check them against nn.Conv2d):
// - srcnn_forward_<padding>: inference, the three convolutions, biases and ReLUs fused in a sliding window of
//   rows, so the 64-channel activations stay in the cache instead of making round trips to memory between
//   unfused primitives. Inputs x [N,1,H,W], w1 [n1,1,k1,k1], b1 [n1], w2 [n2,n1,k2,k2], b2 [n2],
//   w3 [1,n2,k3,k3], b3 [1] (float32, the nn.Conv2d Parameters as they are); output [N,1,Ho,Wo].
// - srcnn_train_forward_<padding>: the same inputs; outputs y and both hidden activations for the backward.
// - srcnn_train_backward_<padding>: the same inputs, the activations and dy; outputs the six gradients.
// Activations are pixel-major (channels innermost, padded to a multiple of CPAD with zero weights) and each
// block of output pixels x channel vectors is accumulated in registers (GCC/Clang vector extensions: one
// source for AVX-512, AVX2 and NEON). Rows (inference) or images (training) are split between threads.
// A 5x5 hidden layer (9-5-5's) runs by Winograd's F(4x4, 5x5) unless SRCNN_CPU_ALGO=direct (use_winograd).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <sched.h>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// VEC: floats per vector; NACC: accumulators per register block (P pixels x G channel vectors, G <= GMAX).
// AVX2 has 16 registers: 4 weight vectors + 12 accumulators + the broadcast would not fit, so its FMAs took
// their weights from memory (15 loads per 12 FMAs, load-bound); 2 x 6 keeps them in registers (8 loads).
#if defined(__AVX512F__)
#define VEC 16
#define NACC 24
#define GMAX 4
#elif defined(__AVX__)
#define VEC 8
#define NACC 12
#define GMAX 2
#else
#define VEC 4
#define NACC 12
#define GMAX 4
#endif
#define CPAD 16  // channel padding: a multiple of every VEC

typedef float vf __attribute__((vector_size(VEC * 4), aligned(4)));

namespace {

enum Padding { kValid, kZeros, kReplicate };

// Freed buffers kept for the next operator call (a training step allocates the same sizes every time): without
// it every call paid fresh pages (page faults and the kernel's zeroing) for its ~1-10 MB of scratch per thread.
class BufferPool {
 public:
  static BufferPool &get() {
    static BufferPool pool;
    return pool;
  }
  float *take(size_t n, size_t *capacity) {  // n floats at least, 64-byte aligned; throws std::bad_alloc
    {
      std::lock_guard<std::mutex> lock(mutex_);
      size_t best = free_.size();
      for (size_t i = 0; i < free_.size(); i++)  // the smallest that fits
        if (free_[i].first >= n && (best == free_.size() || free_[i].first < free_[best].first)) best = i;
      if (best < free_.size()) {
        float *data = free_[best].second;
        *capacity = free_[best].first;
        held_ -= *capacity;
        free_.erase(free_.begin() + best);
        return data;
      }
    }
    void *data = nullptr;
    if (posix_memalign(&data, 64, n * sizeof(float)) != 0) throw std::bad_alloc();
    *capacity = n;
    return static_cast<float *>(data);
  }
  void give(float *data, size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (held_ + capacity > kMaxHeld || free_.size() >= kMaxBuffers) {
      free(data);
      return;
    }
    free_.emplace_back(capacity, data);
    held_ += capacity;
  }
  ~BufferPool() {
    for (auto &b : free_) free(b.second);
  }

 private:
  static constexpr size_t kMaxHeld = size_t(16) << 20, kMaxBuffers = 64;  // floats (64 MB), buffers
  std::mutex mutex_;
  std::vector<std::pair<size_t, float *>> free_;
  size_t held_ = 0;
};

struct Buffer {  // 64-byte aligned, zeroed unless zero is false (for buffers written whole before they are read);
                 // throws std::bad_alloc (the entry points return an error code)
  float *data = nullptr;
  size_t capacity = 0;
  explicit Buffer(size_t n, bool zero = true) {
    n = std::max<size_t>(n, 1);
    data = BufferPool::get().take(n, &capacity);
    if (zero) std::memset(data, 0, n * sizeof(float));
  }
  ~Buffer() { BufferPool::get().give(data, capacity); }
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
};

inline vf load(const float *p) { return *reinterpret_cast<const vf *>(p); }
inline void store(float *p, vf v) { *reinterpret_cast<vf *>(p) = v; }
// Every lane s. Not vf{} + s: 0 + s must turn -0 into +0, so the compiler adds in a register and broadcasts
// that on a shuffle port the FMAs share (AVX2); s - 0 is s exactly, and this is one broadcast load.
inline vf splat(float s) { return s - vf{}; }
// Keeps v in a register: GCC would otherwise fold the load into every FMA that uses it (a load per FMA; x86
// without AVX-512 has too few load ports for that).
inline void in_register(vf &v) {
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__AVX512F__)
  asm("" : "+x"(v));
#else
  (void)v;
#endif
}
inline vf relu(vf v) { return v > 0 ? v : vf{}; }
inline int round_up(int n) { return (n + CPAD - 1) / CPAD * CPAD; }

// One convolution layer as seen by the kernels: k x k, c_in -> c_out, both padded to CPAD (except the image).
struct Layer {
  int k, c_in, c_out;
  std::vector<float> w;  // [ky][kx][c_in][c_out]
  std::vector<float> b;  // [c_out]
};

Layer pack(const float *w, const float *b, int c_out, int c_in, int k, bool pad_in, bool pad_out) {
  Layer l{k, pad_in ? round_up(c_in) : c_in, pad_out ? round_up(c_out) : c_out, {}, {}};
  l.w.assign(static_cast<size_t>(k) * k * l.c_in * l.c_out, 0.f);
  l.b.assign(l.c_out, 0.f);
  for (int co = 0; co < c_out; co++) {
    l.b[co] = b[co];
    for (int ci = 0; ci < c_in; ci++)
      for (int t = 0; t < k * k; t++)
        l.w[(static_cast<size_t>(t) * l.c_in + ci) * l.c_out + co] = w[(static_cast<size_t>(co) * c_in + ci) * k * k + t];
  }
  return l;
}

// out[x][c0 .. c0 + G*VEC) = ReLU(bias + sum over taps and input channels), for P consecutive pixels from x.
// rows[ky] points at pixel 0 of the (padded) input row ky; pixels are c_in floats apart.
template <int P, int G>
inline void conv_block(const float *const *rows, const Layer &l, int c0, int x, float *out, int out_stride, bool rectify) {
  vf acc[P][G];
  for (int g = 0; g < G; g++) {
    vf bias = load(&l.b[c0 + g * VEC]);
    for (int p = 0; p < P; p++) acc[p][g] = bias;
  }
  if (l.c_in == 1) {  // the image (layer 1) or one gradient channel: no channel loop, the taps of a row in a run
    for (int ky = 0; ky < l.k; ky++) {
      if (!rows[ky]) continue;
      const float *in = rows[ky] + x, *w = &l.w[static_cast<size_t>(ky * l.k) * l.c_out + c0];
      for (int kx = 0; kx < l.k; kx++, w += l.c_out) {
        vf wv[G];
        for (int g = 0; g < G; g++) wv[g] = load(w + g * VEC);
        for (int p = 0; p < P; p++) {
          vf s = splat(in[kx + p]);
          for (int g = 0; g < G; g++) acc[p][g] += s * wv[g];
        }
      }
    }
    for (int p = 0; p < P; p++)
      for (int g = 0; g < G; g++)
        store(out + static_cast<size_t>(x + p) * out_stride + c0 + g * VEC, rectify ? relu(acc[p][g]) : acc[p][g]);
    return;
  }
  for (int ky = 0; ky < l.k; ky++) {
    if (!rows[ky]) continue;  // a row of zero padding
    for (int kx = 0; kx < l.k; kx++) {
      const float *in = rows[ky] + static_cast<size_t>(x + kx) * l.c_in;
      const float *w = &l.w[(static_cast<size_t>(ky * l.k + kx) * l.c_in) * l.c_out + c0];
      for (int ci = 0; ci < l.c_in; ci++, w += l.c_out) {
        vf wv[G];
        for (int g = 0; g < G; g++) wv[g] = load(w + g * VEC);
        for (int p = 0; p < P; p++) {
          vf s = splat(in[static_cast<size_t>(p) * l.c_in + ci]);
          for (int g = 0; g < G; g++) acc[p][g] += s * wv[g];
        }
      }
    }
  }
  for (int p = 0; p < P; p++)
    for (int g = 0; g < G; g++)
      store(out + static_cast<size_t>(x + p) * out_stride + c0 + g * VEC, rectify ? relu(acc[p][g]) : acc[p][g]);
}

// The last `count` (< P) pixels of a row in one block of exactly that many.
template <int P, int G>
inline void conv_tail(const float *const *rows, const Layer &l, int c0, int x, int count, float *out, bool rectify) {
  if constexpr (P > 1) {
    if (count == P - 1) return conv_block<P - 1, G>(rows, l, c0, x, out, l.c_out, rectify);
    conv_tail<P - 1, G>(rows, l, c0, x, count, out, rectify);
  }
}

template <int G>
void conv_row_group(const float *const *rows, const Layer &l, int c0, int width, float *out, bool rectify) {
  constexpr int P = NACC / G;
  int x = 0;
  for (; x + P <= width; x += P) conv_block<P, G>(rows, l, c0, x, out, l.c_out, rectify);
  if (x < width) conv_tail<P, G>(rows, l, c0, x, width - x, out, rectify);
}

// A hidden layer's output row (width pixels, ReLU applied unless rectify is false) from its k input rows.
void conv_row(const float *const *rows, const Layer &l, int width, float *out, bool rectify = true) {
  for (int c0 = 0; c0 < l.c_out; c0 += GMAX * VEC) {
    switch (std::min(GMAX, (l.c_out - c0) / VEC)) {
      case 4: conv_row_group<4>(rows, l, c0, width, out, rectify); break;
      case 3: conv_row_group<3>(rows, l, c0, width, out, rectify); break;
      case 2: conv_row_group<2>(rows, l, c0, width, out, rectify); break;
      default: conv_row_group<1>(rows, l, c0, width, out, rectify); break;
    }
  }
}

// The last layer (one output channel, no ReLU): vectors run along the input channels, summed at the end.
template <int P>
inline void last_block(const float *const *rows, const Layer &l, int x, float *out) {
  constexpr int GV = CPAD / VEC;
  vf acc[P][GV] = {};
  for (int ky = 0; ky < l.k; ky++) {
    if (!rows[ky]) continue;
    for (int kx = 0; kx < l.k; kx++) {
      const float *in = rows[ky] + static_cast<size_t>(x + kx) * l.c_in;
      const float *w = &l.w[static_cast<size_t>(ky * l.k + kx) * l.c_in];
      for (int c0 = 0; c0 < l.c_in; c0 += CPAD) {
        vf wv[GV];
        for (int g = 0; g < GV; g++) wv[g] = load(w + c0 + g * VEC);
        for (int p = 0; p < P; p++)
          for (int g = 0; g < GV; g++) acc[p][g] += load(in + static_cast<size_t>(p) * l.c_in + c0 + g * VEC) * wv[g];
      }
    }
  }
  for (int p = 0; p < P; p++) {
    vf v = acc[p][0];
    for (int g = 1; g < GV; g++) v += acc[p][g];
    float s = 0.f;
    for (int i = 0; i < VEC; i++) s += v[i];
    out[x + p] = s + l.b[0];
  }
}

template <int P>
inline void last_tail(const float *const *rows, const Layer &l, int x, int count, float *out) {
  if constexpr (P > 1) {
    if (count == P - 1) return last_block<P - 1>(rows, l, x, out);
    last_tail<P - 1>(rows, l, x, count, out);
  }
}

void last_row(const float *const *rows, const Layer &l, int width, float *out) {
  constexpr int P = NACC / (CPAD / VEC);
  int x = 0;
  for (; x + P <= width; x += P) last_block<P>(rows, l, x, out);
  if (x < width) last_tail<P>(rows, l, x, width - x, out);
}

// ---- Winograd F(4x4, 5x5) (Lavin & Gray 2016) for the 5x5 hidden layer: an 8x8 tile of input pixels gives
// 4x4 output pixels with 64 element-wise products per channel pair instead of 400 multiply-adds. Per tile and
// channel vector the input is transformed once (V = B^T d B); the products are 64 small GEMMs over the
// channels (M = V U, U = G w G^T packed once per call), batched over kWinoChunk tiles so they run at the same
// register-blocked FMA rate as the direct kernels; then Y = A^T M A. The weight gradient is G^T (sum over
// tiles of V . (A dY A^T)) G. Points 0, +-1, +-2, +-1/2 and infinity: float32 error ~3e-6 relative
// (tests/integration/test_fused_cpu.py checks 1e-4 against nn.Conv2d). Chunks of 12 to 48 tiles measured alike
// on Zen 5 (AVX-512, 1 MB L2); on Zen 3 (AVX2, 512 KB L2) 18 tiles (a 64-channel chunk's V and M: 442 KB) took
// 5-10% less time than 24 (590 KB) in the training step, 12 no less.
#if defined(__AVX__) && !defined(__AVX512F__)
constexpr int kWinoChunk = 18;
#else
constexpr int kWinoChunk = 24;
#endif
constexpr int kWinoM = 4, kWinoT = 8, kWinoTaps = kWinoT * kWinoT;

// B^T (8 x 8, the input transform) = [-1 0 21/4 0 -21/4 0 1 0; 0 1 1 -17/4 -17/4 1 1 0; 0 -1 1 17/4 -17/4 -1 1 0;
//   0 1/2 1/4 -5/2 -5/4 2 1 0; 0 -1/2 1/4 5/2 -5/4 -2 1 0; 0 2 4 -5/2 -5 1/2 1 0; 0 -2 4 5/2 -5 -1/2 1 0;
//   0 -1 0 21/4 0 -21/4 0 1], A^T (4 x 8, the output transform) = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 0;
//   0 1 1 4 4 1/4 1/4 0; 0 1 -1 8 -8 1/8 -1/8 1]: Cook-Toom at the points above, exact in float32. They are
// applied factored (even and odd parts share their sums: ~40% fewer operations than their non-zeros), A (the
// output gradient's transform) being A^T's transpose. G (8 x 5), the weight transform, in double (used once per call)
constexpr double kWinoG[8][5] = {{-1, 0, 0, 0, 0},
                                 {-20 / 90., -20 / 90., -20 / 90., -20 / 90., -20 / 90.},
                                 {-20 / 90., 20 / 90., -20 / 90., 20 / 90., -20 / 90.},
                                 {1 / 90., 2 / 90., 4 / 90., 8 / 90., 16 / 90.},
                                 {1 / 90., -2 / 90., 4 / 90., -8 / 90., 16 / 90.},
                                 {64 / 90., 32 / 90., 16 / 90., 8 / 90., 4 / 90.},
                                 {64 / 90., -32 / 90., 16 / 90., -8 / 90., 4 / 90.},
                                 {0, 0, 0, 0, 1}};

inline void wino_bt(const vf *d, int ds, vf *y, int ys) {  // y = B^T d
  const vf d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds], d6 = d[6 * ds],
           d7 = d[7 * ds];
  const vf e1 = d2 + d6 - 4.25f * d4, o1 = d1 + d5 - 4.25f * d3;
  const vf e2 = 0.25f * d2 + d6 - 1.25f * d4, o2 = 0.5f * d1 + 2.f * d5 - 2.5f * d3;
  const vf e3 = 4.f * d2 + d6 - 5.f * d4, o3 = 2.f * d1 + 0.5f * d5 - 2.5f * d3;
  y[0] = (d6 - d0) + 5.25f * (d2 - d4);
  y[ys] = e1 + o1;
  y[2 * ys] = e1 - o1;
  y[3 * ys] = e2 + o2;
  y[4 * ys] = e2 - o2;
  y[5 * ys] = e3 + o3;
  y[6 * ys] = e3 - o3;
  y[7 * ys] = (d7 - d1) + 5.25f * (d3 - d5);
}
inline void wino_at(const vf *m, int ms, vf *y, int ys) {  // y = A^T m
  const vf s12 = m[ms] + m[2 * ms], d12 = m[ms] - m[2 * ms], s34 = m[3 * ms] + m[4 * ms], d34 = m[3 * ms] - m[4 * ms];
  const vf s56 = m[5 * ms] + m[6 * ms], d56 = m[5 * ms] - m[6 * ms];
  y[0] = m[0] + s12 + s34 + s56;
  y[ys] = d12 + 2.f * d34 + 0.5f * d56;
  y[2 * ys] = s12 + 4.f * s34 + 0.25f * s56;
  y[3 * ys] = d12 + 8.f * d34 + 0.125f * d56 + m[7 * ms];
}
inline void wino_a(const vf *d, int ds, vf *y, int ys) {  // y = A d
  const vf d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds];
  const vf e1 = d0 + d2, o1 = d1 + d3, e2 = d0 + 4.f * d2, o2 = 2.f * d1 + 8.f * d3, e3 = d0 + 0.25f * d2,
           o3 = 0.5f * d1 + 0.125f * d3;
  y[0] = d0;
  y[ys] = e1 + o1;
  y[2 * ys] = e1 - o1;
  y[3 * ys] = e2 + o2;
  y[4 * ys] = e2 - o2;
  y[5 * ys] = e3 + o3;
  y[6 * ys] = e3 - o3;
  y[7 * ys] = d3;
}

// The 2-D transform X d X^T of one IN x IN tile of VEC-channel vectors, X (OUT x IN) applied by
// transform(d, d_stride, y, y_stride) to each column, then to each row: d[r][x] = load_at(r, x); store_row(a, o)
// takes row a of the result (OUT vectors) for each a with wanted(a). The input transform (B^T, 8 -> 8), the output
// gradient's (A, 4 -> 8) and the output transform (A^T, 8 -> 4) are this with their matrices.
template <int IN, int OUT, void (*transform)(const vf *, int, vf *, int), class Load, class Wanted, class Store>
__attribute__((always_inline)) inline void wino_tile_transform(Load load_at, Wanted wanted, Store store_row) {
  vf d[IN][IN], t[OUT][IN], o[OUT];
  for (int r = 0; r < IN; r++)
    for (int x = 0; x < IN; x++) d[r][x] = load_at(r, x);
  for (int x = 0; x < IN; x++) transform(&d[0][x], IN, &t[0][x], IN);
  for (int a = 0; a < OUT; a++) {
    if (!wanted(a)) continue;
    transform(t[a], 1, o, 1);
    store_row(a, o);
  }
}

// A 5x5 layer in the transformed domain: u [64 taps][c_in][c_out] = G w G^T per channel pair.
struct WinoLayer {
  int c_in, c_out;
  std::vector<float> u, b;
};

WinoLayer wino_pack(const Layer &l) {
  // the two products with G as whole-row axpys over the channel pairs (contiguous: vectorised)
  WinoLayer t{l.c_in, l.c_out, std::vector<float>(static_cast<size_t>(kWinoTaps) * l.c_in * l.c_out, 0.f), l.b};
  const size_t pairs = static_cast<size_t>(l.c_in) * l.c_out;
  std::vector<float> r(static_cast<size_t>(5) * kWinoT * pairs, 0.f);  // (w G^T)[ky][j]
  for (int ky = 0; ky < 5; ky++)
    for (int j = 0; j < kWinoT; j++)
      for (int kx = 0; kx < 5; kx++) {
        const float g = static_cast<float>(kWinoG[j][kx]), *src = &l.w[(ky * 5 + kx) * pairs];
        if (g == 0.f) continue;
        float *dst = &r[(ky * kWinoT + j) * pairs];
        for (size_t p = 0; p < pairs; p++) dst[p] += g * src[p];
      }
  for (int i = 0; i < kWinoT; i++)
    for (int ky = 0; ky < 5; ky++) {
      const float g = static_cast<float>(kWinoG[i][ky]);
      if (g == 0.f) continue;
      for (int j = 0; j < kWinoT; j++) {
        const float *src = &r[(ky * kWinoT + j) * pairs];
        float *dst = &t.u[(i * kWinoT + j) * pairs];
        for (size_t p = 0; p < pairs; p++) dst[p] += g * src[p];
      }
    }
  return t;
}

// Per-thread transformed tiles: v [64][kWinoChunk][c_in], m [64][kWinoChunk][c_out].
struct WinoScratch {
  Buffer v, m;
  WinoScratch(int c_in, int c_out)
      : v(static_cast<size_t>(kWinoTaps) * kWinoChunk * c_in, false),
        m(static_cast<size_t>(kWinoTaps) * kWinoChunk * c_out, false) {}  // written before they are read
};

// The tiles of a chunk: tile i's output origin is (4 * (t / tiles_x), 4 * (t % tiles_x)), t = first + i.
struct WinoTiles {
  int first, count, tiles_x;
  int y(int i) const { return kWinoM * ((first + i) / tiles_x); }
  int x(int i) const { return kWinoM * ((first + i) % tiles_x); }
};

// V = B^T d B of each tile of the chunk; in_row(y) is input row y (pixel 0; in_w pixels of c floats) or
// nullptr for a row of zeros; pixels right of in_w are zeros.
template <class InRow>
void wino_input_transform(InRow in_row, int in_w, int c, const WinoTiles &tiles, float *v) {
  const size_t tap_stride = static_cast<size_t>(kWinoChunk) * c;
  for (int i = 0; i < tiles.count; i++) {
    const int y0 = tiles.y(i), x0 = tiles.x(i), nx = std::min(kWinoT, in_w - x0);
    const float *rows[kWinoT];
    for (int s = 0; s < kWinoT; s++) rows[s] = in_row(y0 + s);
    for (int c0 = 0; c0 < c; c0 += VEC) {
      float *dst = v + static_cast<size_t>(i) * c + c0;
      wino_tile_transform<kWinoT, kWinoT, wino_bt>(
          [&](int s, int x) {
            return rows[s] && x < nx ? load(rows[s] + static_cast<size_t>(x0 + x) * c + c0) : vf{};
          },
          [](int) { return true; },
          [&](int r, const vf *o) {
            for (int x = 0; x < kWinoT; x++) store(dst + (r * kWinoT + x) * tap_stride, o[x]);
          });
    }
  }
}

// m[tap][tile][co0 ..] = sum over ci of v[tap][tile][ci] u[tap][ci][co0 ..] for P tiles, G channel vectors.
template <int P, int G>
inline void wino_gemm_block(const float *v, const float *u, int c_in, int c_out, float *m) {
  vf acc[P][G] = {};
  for (int ci = 0; ci < c_in; ci++, u += c_out) {
    vf wv[G];
    for (int g = 0; g < G; g++) wv[g] = load(u + g * VEC);
    for (int p = 0; p < P; p++) {
      vf s = splat(v[static_cast<size_t>(p) * c_in + ci]);
      for (int g = 0; g < G; g++) acc[p][g] += s * wv[g];
    }
  }
  for (int p = 0; p < P; p++)
    for (int g = 0; g < G; g++) store(m + static_cast<size_t>(p) * c_out + g * VEC, acc[p][g]);
}

template <int P, int G>
inline void wino_gemm_tail(const float *v, const float *u, int c_in, int c_out, float *m, int count) {
  if constexpr (P > 1) {
    if (count == P - 1) return wino_gemm_block<P - 1, G>(v, u, c_in, c_out, m);
    wino_gemm_tail<P - 1, G>(v, u, c_in, c_out, m, count);
  }
}

template <int G>
void wino_gemm_group(const float *v, const float *u, int c_in, int c_out, int co0, int count, float *m) {
  constexpr int P = NACC / G;
  int i = 0;
  for (; i + P <= count; i += P)
    wino_gemm_block<P, G>(v + static_cast<size_t>(i) * c_in, u + co0, c_in, c_out, m + static_cast<size_t>(i) * c_out + co0);
  if (i < count)
    wino_gemm_tail<P, G>(v + static_cast<size_t>(i) * c_in, u + co0, c_in, c_out, m + static_cast<size_t>(i) * c_out + co0,
                         count - i);
}

// The 64 element-wise products of a chunk, each a (tiles x c_in) (c_in x c_out) matrix product.
void wino_products(const WinoLayer &l, int count, const float *v, float *m) {
  const size_t pairs = static_cast<size_t>(l.c_in) * l.c_out;
  for (int tap = 0; tap < kWinoTaps; tap++) {
    const float *vt = v + static_cast<size_t>(tap) * kWinoChunk * l.c_in, *ut = &l.u[tap * pairs];
    float *mt = m + static_cast<size_t>(tap) * kWinoChunk * l.c_out;
    for (int co0 = 0; co0 < l.c_out; co0 += GMAX * VEC) {
      switch (std::min(GMAX, (l.c_out - co0) / VEC)) {
        case 4: wino_gemm_group<4>(vt, ut, l.c_in, l.c_out, co0, count, mt); break;
        case 3: wino_gemm_group<3>(vt, ut, l.c_in, l.c_out, co0, count, mt); break;
        case 2: wino_gemm_group<2>(vt, ut, l.c_in, l.c_out, co0, count, mt); break;
        default: wino_gemm_group<1>(vt, ut, l.c_in, l.c_out, co0, count, mt); break;
      }
    }
  }
}

// Y = A^T M A + bias (ReLU unless rectify is false) of each tile, written to out_row(y) (pixel 0 of output
// row y, c_out floats a pixel; nullptr: a row not wanted) for the rows below out_h and columns below out_w.
template <class OutRow>
void wino_output_transform(const WinoLayer &l, const WinoTiles &tiles, const float *m, int out_h, int out_w,
                           OutRow out_row, bool rectify) {
  const size_t tap_stride = static_cast<size_t>(kWinoChunk) * l.c_out;
  for (int i = 0; i < tiles.count; i++) {
    const int y0 = tiles.y(i), x0 = tiles.x(i), nx = std::min(kWinoM, out_w - x0);
    float *rows[kWinoM];
    for (int r = 0; r < kWinoM; r++) rows[r] = y0 + r < out_h ? out_row(y0 + r) : nullptr;
    for (int c0 = 0; c0 < l.c_out; c0 += VEC) {
      const float *src = m + static_cast<size_t>(i) * l.c_out + c0;
      const vf bias = load(&l.b[c0]);
      wino_tile_transform<kWinoT, kWinoM, wino_at>(
          [&](int a, int b) { return load(src + (a * kWinoT + b) * tap_stride); },
          [&](int r) { return rows[r] != nullptr; },
          [&](int r, const vf *o) {
            for (int x = 0; x < nx; x++) {
              vf y = o[x] + bias;
              store(rows[r] + static_cast<size_t>(x0 + x) * l.c_out + c0, rectify ? relu(y) : y);
            }
          });
    }
  }
}

// A 5x5 layer by Winograd over output rows [0, out_h) x columns [0, out_w): in_row(y) / out_row(y) as above,
// in input coordinates where output pixel (y, x) reads input rows y .. y + 4 and columns x .. x + 4.
template <class InRow, class OutRow>
void wino_conv(InRow in_row, int in_w, const WinoLayer &l, int out_h, int out_w, OutRow out_row, bool rectify,
               WinoScratch &scratch) {
  const int tiles_x = (out_w + kWinoM - 1) / kWinoM, tiles = tiles_x * ((out_h + kWinoM - 1) / kWinoM);
  for (int first = 0; first < tiles; first += kWinoChunk) {
    const WinoTiles chunk{first, std::min(kWinoChunk, tiles - first), tiles_x};
    wino_input_transform(in_row, in_w, l.c_in, chunk, scratch.v.data);
    wino_products(l, chunk.count, scratch.v.data, scratch.m.data);
    wino_output_transform(l, chunk, scratch.m.data, out_h, out_w, out_row, rectify);
  }
}

// conv_plane by Winograd (a 5x5 layer on a padded plane; the first and last zero_rows rows are zeros).
void wino_conv_plane(const float *padded, int in_w, const WinoLayer &l, int out_h, int out_w, float *out, bool rectify,
                     WinoScratch &scratch, int zero_rows = 0) {
  const int in_h = out_h + 4;
  auto in_row = [&](int y) -> const float * {
    return y < zero_rows || y >= in_h - zero_rows ? nullptr : padded + static_cast<size_t>(y) * in_w * l.c_in;
  };
  auto out_row = [&](int y) { return out + static_cast<size_t>(y) * out_w * l.c_out; };
  wino_conv(in_row, in_w, l, out_h, out_w, out_row, rectify, scratch);
}

// Z = A dY A^T of each tile of a chunk of the output gradient grad (h x w x c pixel-major; zeros outside).
void wino_grad_transform(const float *grad, int h, int w, int c, const WinoTiles &tiles, float *z) {
  const size_t tap_stride = static_cast<size_t>(kWinoChunk) * c;
  for (int i = 0; i < tiles.count; i++) {
    const int y0 = tiles.y(i), x0 = tiles.x(i), ny = std::min(kWinoM, h - y0), nx = std::min(kWinoM, w - x0);
    for (int c0 = 0; c0 < c; c0 += VEC) {
      float *dst = z + static_cast<size_t>(i) * c + c0;
      wino_tile_transform<kWinoM, kWinoT, wino_a>(
          [&](int r, int x) {
            return r < ny && x < nx ? load(grad + (static_cast<size_t>(y0 + r) * w + x0 + x) * c + c0) : vf{};
          },
          [](int) { return true; },
          [&](int a, const vf *o) {
            for (int b = 0; b < kWinoT; b++) store(dst + (a * kWinoT + b) * tap_stride, o[b]);
          });
    }
  }
}

// mw[ci0 .. ci0 + P][co0 ..] += sum over the chunk's tiles of v[tile][ci] z[tile][co] (one tap).
template <int P, int G>
inline void wino_wgrad_block(const float *v, int c_in, const float *z, int c_out, int count, int ci0, int co0, float *mw) {
  vf acc[P][G] = {};
  for (int i = 0; i < count; i++) {
    vf zv[G];
    for (int g = 0; g < G; g++) {
      zv[g] = load(z + static_cast<size_t>(i) * c_out + co0 + g * VEC);
      in_register(zv[g]);
    }
    for (int p = 0; p < P; p++) {
      vf s = splat(v[static_cast<size_t>(i) * c_in + ci0 + p]);
      for (int g = 0; g < G; g++) acc[p][g] += s * zv[g];
    }
  }
  for (int p = 0; p < P; p++)
    for (int g = 0; g < G; g++) {
      float *d = mw + static_cast<size_t>(ci0 + p) * c_out + co0 + g * VEC;
      store(d, load(d) + acc[p][g]);
    }
}

template <int G>
void wino_wgrad_group(const float *v, int c_in, const float *z, int c_out, int count, int co0, float *mw) {
  constexpr int P = NACC / G >= 8 ? 8 : (NACC / G >= 4 ? 4 : (NACC / G >= 2 ? 2 : 1));  // c_in: a multiple of CPAD
  for (int ci = 0; ci < c_in; ci += P) wino_wgrad_block<P, G>(v, c_in, z, c_out, count, ci, co0, mw);
}

// The weight gradient in the transformed domain, mw [64][c_in][c_out] += sum over tiles of V . Z, for the
// input plane `padded` (in_w pixels of c_in floats a row) and the output gradient grad (h x w x c_out).
void wino_weight_grad(const float *padded, int in_w, int c_in, const float *grad, int h, int w, int c_out, float *mw,
                      WinoScratch &scratch) {
  const int in_h = h + 4, tiles_x = (w + kWinoM - 1) / kWinoM, tiles = tiles_x * ((h + kWinoM - 1) / kWinoM);
  auto in_row = [&](int y) -> const float * { return y < in_h ? padded + static_cast<size_t>(y) * in_w * c_in : nullptr; };
  const size_t pairs = static_cast<size_t>(c_in) * c_out;
  for (int first = 0; first < tiles; first += kWinoChunk) {
    const WinoTiles chunk{first, std::min(kWinoChunk, tiles - first), tiles_x};
    wino_input_transform(in_row, in_w, c_in, chunk, scratch.v.data);
    wino_grad_transform(grad, h, w, c_out, chunk, scratch.m.data);
    for (int tap = 0; tap < kWinoTaps; tap++) {
      const float *vt = scratch.v.data + static_cast<size_t>(tap) * kWinoChunk * c_in;
      const float *zt = scratch.m.data + static_cast<size_t>(tap) * kWinoChunk * c_out;
      for (int co0 = 0; co0 < c_out; co0 += GMAX * VEC) {
        switch (std::min(GMAX, (c_out - co0) / VEC)) {
          case 4: wino_wgrad_group<4>(vt, c_in, zt, c_out, chunk.count, co0, mw + tap * pairs); break;
          case 3: wino_wgrad_group<3>(vt, c_in, zt, c_out, chunk.count, co0, mw + tap * pairs); break;
          case 2: wino_wgrad_group<2>(vt, c_in, zt, c_out, chunk.count, co0, mw + tap * pairs); break;
          default: wino_wgrad_group<1>(vt, c_in, zt, c_out, chunk.count, co0, mw + tap * pairs); break;
        }
      }
    }
  }
}

// dw (Layer::w layout, 5x5) += G^T mw G, as whole-row axpys like wino_pack.
void wino_weight_grad_unpack(const float *mw, int c_in, int c_out, float *dw) {
  const size_t pairs = static_cast<size_t>(c_in) * c_out;
  std::vector<float> r(static_cast<size_t>(5) * kWinoT * pairs, 0.f);  // (G^T mw)[ky][j]
  for (int ky = 0; ky < 5; ky++)
    for (int i = 0; i < kWinoT; i++) {
      const float g = static_cast<float>(kWinoG[i][ky]);
      if (g == 0.f) continue;
      for (int j = 0; j < kWinoT; j++) {
        const float *src = mw + (i * kWinoT + j) * pairs;
        float *dst = &r[(ky * kWinoT + j) * pairs];
        for (size_t p = 0; p < pairs; p++) dst[p] += g * src[p];
      }
    }
  for (int ky = 0; ky < 5; ky++)
    for (int kx = 0; kx < 5; kx++)
      for (int j = 0; j < kWinoT; j++) {
        const float g = static_cast<float>(kWinoG[j][kx]), *src = &r[(ky * kWinoT + j) * pairs];
        if (g == 0.f) continue;
        float *dst = dw + (ky * 5 + kx) * pairs;
        for (size_t p = 0; p < pairs; p++) dst[p] += g * src[p];
      }
}

// SRCNN_CPU_ALGO: "direct", "winograd" (5x5 hidden layers only), or "auto" (the default; src/model/cpu/fused.py
// refuses other values): Winograd unless the output is under 3 pixels high or wide, where the 4x4 tiles are
// mostly padding. Measured (benchmarks/bench_winograd_layer.cc, benchmarks/README.md) for 16 to 64 channels
// and AVX-512, AVX2 and SSE2 builds: Winograd takes 0.4-0.9x direct's time at 3 pixels, 0.2-0.55x from 4,
// 0.6-1.4x at 2 and ~3x at 1.
bool use_winograd(const Layer &l, int out_h, int out_w) {
  if (l.k != 5) return false;
  const char *env = std::getenv("SRCNN_CPU_ALGO");
  const std::string algo = env ? env : "auto";
  if (algo == "direct") return false;
  if (algo == "winograd") return true;
  return std::min(out_h, out_w) >= 3;
}

// Row index of a layer's padded input: -1 means a zero row.
inline int source_row(int i, int rows, Padding padding) {
  if (i >= 0 && i < rows) return i;
  return padding == kReplicate ? std::min(std::max(i, 0), rows - 1) : -1;
}

// Fills the `pad` columns on each side of a pixel-major row of `width` pixels (c floats each).
void pad_columns(float *row, int width, int pad, int c, Padding padding) {
  for (int p = 0; p < pad; p++) {
    float *left = row + static_cast<size_t>(p) * c, *right = row + static_cast<size_t>(pad + width + p) * c;
    if (padding == kReplicate) {
      std::memcpy(left, row + static_cast<size_t>(pad) * c, c * sizeof(float));
      std::memcpy(right, row + static_cast<size_t>(pad + width - 1) * c, c * sizeof(float));
    } else {
      std::memset(left, 0, c * sizeof(float));
      std::memset(right, 0, c * sizeof(float));
    }
  }
}

// The rows of one layer's output that the next layer currently needs: a ring of k slots tagged by row.
struct RowRing {
  int slots, stride;  // stride: floats per row, column padding included
  Buffer buf;
  std::vector<int> tag;
  RowRing(int k, int stride) : slots(k), stride(stride), buf(static_cast<size_t>(k) * stride), tag(k, -1) {}
  float *slot(int r) { return buf.data + static_cast<size_t>(r % slots) * stride; }
};

// The network as the operators receive it (x, w1, b1, w2, b2, w3, b3 first): weights packed, every layer's
// size ([0]: the input, [i]: layer i's output).
struct Net {
  Padding padding;
  int batch, n1, n2;
  Layer layers[3];
  int pads[3], heights[4], widths[4];
};

// Whether tensor i has exactly the shape `dims`.
bool has_shape(int i, int *ndims, int64_t **shapes, std::initializer_list<int64_t> dims) {
  if (ndims[i] != static_cast<int>(dims.size())) return false;
  int d = 0;
  for (int64_t size : dims)
    if (shapes[i][d++] != size) return false;
  return true;
}

// One image of an inference call: the network and the input with layer 1's padding
// ((heights[0] + 2 pads[0]) x padded_width floats).
struct Image {
  const Net &net;
  const float *padded;
  int padded_width;
  const WinoLayer *wino2;  // layer 2 by Winograd, or nullptr: direct
};

// Layer-1 and layer-2 output rows on demand, then the output rows [r0, r1) of one image.
void run_rows(const Image &im, float *out, int r0, int r1) {
  const Net &net = im.net;
  const Layer &l1 = net.layers[0], &l2 = net.layers[1], &l3 = net.layers[2];
  // Winograd makes layer 2's rows 4 at a time (aligned groups), from 8 layer-1 rows: rings that hold them
  // while the last layer's window of k3 rows is still in use
  const bool wino = im.wino2 != nullptr;
  RowRing ring1(wino ? std::max(l2.k, kWinoT) : l2.k, (net.widths[1] + 2 * net.pads[1]) * l1.c_out);
  RowRing ring2(wino ? l3.k + 2 * kWinoM : l3.k, (net.widths[2] + 2 * net.pads[2]) * l2.c_out);
  WinoScratch scratch(wino ? l2.c_in : 0, wino ? l2.c_out : 0);
  std::vector<const float *> rows(std::max(l1.k, std::max(l2.k, l3.k)));

  auto layer1 = [&](int r) -> const float * {
    float *dst = ring1.slot(r);
    if (ring1.tag[r % ring1.slots] != r) {
      for (int ky = 0; ky < l1.k; ky++) rows[ky] = im.padded + static_cast<size_t>(r + ky) * im.padded_width;
      conv_row(rows.data(), l1, net.widths[1], dst + static_cast<size_t>(net.pads[1]) * l1.c_out);
      pad_columns(dst, net.widths[1], net.pads[1], l1.c_out, net.padding);
      ring1.tag[r % ring1.slots] = r;
    }
    return dst;
  };
  auto layer2_group = [&](int r) {  // the rows r0 .. r0 + 3 (r0 = r rounded down to a multiple of 4)
    const int r0 = r / kWinoM * kWinoM, rows_out = std::min(kWinoM, net.heights[2] - r0);
    const float *in[kWinoT];
    for (int s = 0; s < kWinoT; s++) {
      int src = source_row(r0 + s - net.pads[1], net.heights[1], net.padding);
      in[s] = src < 0 || s >= rows_out + l2.k - 1 ? nullptr : layer1(src);
    }
    const int pw1 = net.widths[1] + 2 * net.pads[1];
    wino_conv([&](int y) { return in[y]; }, pw1, *im.wino2, rows_out, net.widths[2],
              [&](int y) { return ring2.slot(r0 + y) + static_cast<size_t>(net.pads[2]) * l2.c_out; }, true, scratch);
    for (int y = 0; y < rows_out; y++) {
      pad_columns(ring2.slot(r0 + y), net.widths[2], net.pads[2], l2.c_out, net.padding);
      ring2.tag[(r0 + y) % ring2.slots] = r0 + y;
    }
  };
  auto layer2 = [&](int r) -> const float * {
    float *dst = ring2.slot(r);
    if (ring2.tag[r % ring2.slots] != r && wino) {
      layer2_group(r);
    } else if (ring2.tag[r % ring2.slots] != r) {
      const float *in[8];
      for (int ky = 0; ky < l2.k; ky++) {
        int src = source_row(r + ky - net.pads[1], net.heights[1], net.padding);
        in[ky] = src < 0 ? nullptr : layer1(src);
      }
      conv_row(in, l2, net.widths[2], dst + static_cast<size_t>(net.pads[2]) * l2.c_out);
      pad_columns(dst, net.widths[2], net.pads[2], l2.c_out, net.padding);
      ring2.tag[r % ring2.slots] = r;
    }
    return dst;
  };
  for (int r = r0; r < r1; r++) {
    const float *in[8];
    for (int ky = 0; ky < l3.k; ky++) {
      int src = source_row(r + ky - net.pads[2], net.heights[2], net.padding);
      in[ky] = src < 0 ? nullptr : layer2(src);
    }
    last_row(in, l3, net.widths[3], out + static_cast<size_t>(r) * net.widths[3]);
  }
}

int available_cpus() {
  if (const char *env = std::getenv("SRCNN_CPU_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Fills `net` from tensors 0-6: 0, or an error code: 2 a dtype other than float32, 3 shapes that are not an
// SRCNN's.
int parse_net(Padding padding, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, Net &net) {
  for (int i = 0; i < nparam; i++)
    if (std::string(dtypes[i]) != "float32" && std::string(dtypes[i]) != "float") return 2;
  if (ndims[0] != 4 || ndims[1] != 4 || ndims[3] != 4 || ndims[5] != 4) return 3;
  const int n1 = static_cast<int>(shapes[1][0]), k1 = static_cast<int>(shapes[1][2]);
  const int n2 = static_cast<int>(shapes[3][0]), k2 = static_cast<int>(shapes[3][2]);
  const int k3 = static_cast<int>(shapes[5][2]);
  // odd square kernels (the padding is (k - 1) / 2 per side), k2 and k3 at most 8 rows (row pointer arrays)
  for (int k : {k1, k2, k3})
    if (k < 1 || k % 2 == 0) return 3;
  if (k2 > 8 || k3 > 8 || n1 < 1 || n2 < 1 || shapes[0][0] < 1 ||
      !has_shape(0, ndims, shapes, {shapes[0][0], 1, shapes[0][2], shapes[0][3]}) ||
      !has_shape(1, ndims, shapes, {n1, 1, k1, k1}) || !has_shape(2, ndims, shapes, {n1}) ||
      !has_shape(3, ndims, shapes, {n2, n1, k2, k2}) || !has_shape(4, ndims, shapes, {n2}) ||
      !has_shape(5, ndims, shapes, {1, n2, k3, k3}) || !has_shape(6, ndims, shapes, {1}))
    return 3;
  net.padding = padding;
  net.batch = static_cast<int>(shapes[0][0]);
  net.n1 = n1;
  net.n2 = n2;
  net.layers[0] = pack(static_cast<const float *>(params[1]), static_cast<const float *>(params[2]), n1, 1, k1, false, true);
  net.layers[1] = pack(static_cast<const float *>(params[3]), static_cast<const float *>(params[4]), n2, n1, k2, true, true);
  net.layers[2] = pack(static_cast<const float *>(params[5]), static_cast<const float *>(params[6]), 1, n2, k3, true, false);
  net.heights[0] = static_cast<int>(shapes[0][2]);
  net.widths[0] = static_cast<int>(shapes[0][3]);
  for (int i = 0; i < 3; i++) {
    int k = net.layers[i].k;
    net.pads[i] = padding == kValid ? 0 : (k - 1) / 2;
    net.heights[i + 1] = net.heights[i] - k + 1 + 2 * net.pads[i];
    net.widths[i + 1] = net.widths[i] - k + 1 + 2 * net.pads[i];
  }
  return net.heights[3] < 1 || net.widths[3] < 1 ? 3 : 0;
}

// Tensor i is shaped like y [N, 1, H3, W3]; tensors i and i + 1 like the hidden activations [N, H1, W1, C1]
// and [N, H2, W2, C2] (channels padded).
bool output_shape_matches(const Net &net, int i, int *ndims, int64_t **shapes) {
  return has_shape(i, ndims, shapes, {net.batch, 1, net.heights[3], net.widths[3]});
}

bool activation_shapes_match(const Net &net, int i, int *ndims, int64_t **shapes) {
  return has_shape(i, ndims, shapes, {net.batch, net.heights[1], net.widths[1], net.layers[0].c_out}) &&
         has_shape(i + 1, ndims, shapes, {net.batch, net.heights[2], net.widths[2], net.layers[1].c_out});
}

// Runs work(t, first, last) on `threads` threads for [0, count) split in contiguous parts.
// An exception in any thread (e.g. std::bad_alloc) is rethrown here after all have finished.
template <typename Work>
void parallel(int count, int threads, Work work) {
  threads = std::max(1, std::min(threads, count));
  std::vector<std::thread> pool;
  std::atomic<bool> failed{false};
  auto guarded = [&](int t, int first, int last) {
    try {
      work(t, first, last);
    } catch (...) {
      failed = true;
    }
  };
  for (int t = 1; t < threads; t++) pool.emplace_back(guarded, t, count * t / threads, count * (t + 1) / threads);
  guarded(0, 0, count / threads);
  for (auto &th : pool) th.join();
  if (failed) throw std::runtime_error("a worker thread failed");
}

// A pixel-major plane (h x w x c) with `pad` pixels of the layer's padding around it.
void pad_plane(const float *src, int h, int w, int c, int pad, Padding padding, float *dst) {
  const int stride = (w + 2 * pad) * c;
  for (int r = -pad; r < h + pad; r++) {
    float *row = dst + static_cast<size_t>(r + pad) * stride;
    int from = source_row(r, h, padding);
    if (from < 0) {
      std::memset(row, 0, stride * sizeof(float));
      continue;
    }
    std::memcpy(row + static_cast<size_t>(pad) * c, src + static_cast<size_t>(from) * w * c,
                static_cast<size_t>(w) * c * sizeof(float));
    pad_columns(row, w, pad, c, padding);
  }
}

int infer(Padding padding, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Net net;
  if (nparam != 8) return 1;
  if (int error = parse_net(padding, nparam, params, ndims, shapes, dtypes, net)) return error;
  if (!output_shape_matches(net, 7, ndims, shapes)) return 4;
  const int h = net.heights[0], w = net.widths[0], p = net.pads[0];
  Buffer padded(static_cast<size_t>(h + 2 * p) * (w + 2 * p));
  const WinoLayer l2w = use_winograd(net.layers[1], net.heights[2], net.widths[2]) ? wino_pack(net.layers[1]) : WinoLayer{};
  const Image im{net, padded.data, w + 2 * p, l2w.u.empty() ? nullptr : &l2w};
  const int rows = net.heights[3];
  for (int n = 0; n < net.batch; n++) {
    pad_plane(static_cast<const float *>(params[0]) + static_cast<size_t>(n) * h * w, h, w, 1, p, padding, padded.data);
    float *out = static_cast<float *>(params[7]) + static_cast<size_t>(n) * rows * net.widths[3];
    parallel(rows, std::min(available_cpus(), rows / 16),
             [&](int, int first, int last) { run_rows(im, out, first, last); });
  }
  return 0;
}

// ---- training: the forward keeps both hidden activations (pixel-major, channels padded to CPAD) for the
// backward, which returns the six Parameter gradients. Images are split between threads; each thread sums
// its weight gradients privately, then the sums are added.

struct Sizes {
  size_t x, a1, a2, y;
};

Sizes image_sizes(const Net &net) {
  return {static_cast<size_t>(net.heights[0]) * net.widths[0],
          static_cast<size_t>(net.heights[1]) * net.widths[1] * net.layers[0].c_out,
          static_cast<size_t>(net.heights[2]) * net.widths[2] * net.layers[1].c_out,
          static_cast<size_t>(net.heights[3]) * net.widths[3]};
}

// A layer applied to a padded plane (width in_w pixels of l.c_in floats, including the padding): out rows.
// The first and last `zero_rows` rows of the plane are zeros: skipped.
void conv_plane(const float *padded, int in_w, const Layer &l, int out_h, int out_w, float *out, bool rectify,
                int zero_rows = 0) {
  const float *rows[8];
  std::vector<const float *> many(l.k);
  const float **r = l.k <= 8 ? rows : many.data();
  const int in_h = out_h + l.k - 1;
  for (int y = 0; y < out_h; y++) {
    for (int ky = 0; ky < l.k; ky++) {
      const int row = y + ky;
      r[ky] = row < zero_rows || row >= in_h - zero_rows ? nullptr : padded + static_cast<size_t>(row) * in_w * l.c_in;
    }
    if (l.c_out == 1 && !rectify)
      last_row(r, l, out_w, out + static_cast<size_t>(y) * out_w);
    else
      conv_row(r, l, out_w, out + static_cast<size_t>(y) * out_w * l.c_out, rectify);
  }
}

int train_forward(Padding padding, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Net net;
  if (nparam != 10) return 1;
  if (int error = parse_net(padding, nparam, params, ndims, shapes, dtypes, net)) return error;
  if (!output_shape_matches(net, 7, ndims, shapes) || !activation_shapes_match(net, 8, ndims, shapes)) return 4;
  const Sizes size = image_sizes(net);
  const int *h = net.heights, *w = net.widths, *p = net.pads;
  const Layer &l2 = net.layers[1];
  const bool wino = use_winograd(l2, h[2], w[2]);
  const WinoLayer l2w = wino ? wino_pack(l2) : WinoLayer{};
  parallel(net.batch, available_cpus(), [&](int, int first, int last) {
    WinoScratch scratch(wino ? l2.c_in : 0, wino ? l2.c_out : 0);
    // padded planes, written whole by pad_plane
    Buffer p0(static_cast<size_t>(h[0] + 2 * p[0]) * (w[0] + 2 * p[0]), false);
    Buffer p1(static_cast<size_t>(h[1] + 2 * p[1]) * (w[1] + 2 * p[1]) * net.layers[0].c_out, false);
    Buffer p2(static_cast<size_t>(h[2] + 2 * p[2]) * (w[2] + 2 * p[2]) * net.layers[1].c_out, false);
    for (int n = first; n < last; n++) {
      float *a1 = static_cast<float *>(params[8]) + n * size.a1, *a2 = static_cast<float *>(params[9]) + n * size.a2;
      pad_plane(static_cast<const float *>(params[0]) + n * size.x, h[0], w[0], 1, p[0], padding, p0.data);
      conv_plane(p0.data, w[0] + 2 * p[0], net.layers[0], h[1], w[1], a1, true);
      pad_plane(a1, h[1], w[1], net.layers[0].c_out, p[1], padding, p1.data);
      if (wino)
        wino_conv_plane(p1.data, w[1] + 2 * p[1], l2w, h[2], w[2], a2, true, scratch);
      else
        conv_plane(p1.data, w[1] + 2 * p[1], l2, h[2], w[2], a2, true);
      pad_plane(a2, h[2], w[2], net.layers[1].c_out, p[2], padding, p2.data);
      conv_plane(p2.data, w[2] + 2 * p[2], net.layers[2], h[3], w[3], static_cast<float *>(params[7]) + n * size.y, false);
    }
  });
  return 0;
}

// dw[ky][kx][ci][co] += sum over pixels of in[y + ky][x + kx][ci] * grad[y][x][co]: for one tap, input
// channels ci0 .. ci0 + P, output channels co0 .. co0 + G * VEC. `in` is a padded plane in_w pixels wide.
template <int P, int G>
void weight_grad_block(const float *in, int in_w, int c_in, const float *grad, int h, int w, int c_out, int ky, int kx,
                       int ci0, int co0, float *dw_tap) {
  vf acc[P][G] = {};
  for (int y = 0; y < h; y++) {
    const float *src = in + (static_cast<size_t>(y + ky) * in_w + kx) * c_in + ci0;
    const float *g_row = grad + static_cast<size_t>(y) * w * c_out + co0;
    for (int x = 0; x < w; x++) {
      vf gv[G];
      for (int g = 0; g < G; g++) gv[g] = load(g_row + static_cast<size_t>(x) * c_out + g * VEC);
      for (int p = 0; p < P; p++) {
        vf s = splat(src[static_cast<size_t>(x) * c_in + p]);
        for (int g = 0; g < G; g++) acc[p][g] += s * gv[g];
      }
    }
  }
  for (int p = 0; p < P; p++)
    for (int g = 0; g < G; g++) {
      float *d = dw_tap + static_cast<size_t>(ci0 + p) * c_out + co0 + g * VEC;
      store(d, load(d) + acc[p][g]);
    }
}

// The image's weight gradient (one input channel) for the taps t0 .. t0 + P in row-major order: dw[t][co] +=
// sum over pixels of in[y + t / k][x + t % k] * grad[y][x][co], channels co0 .. co0 + G * VEC.
template <int P, int G>
void image_weight_grad_block(const float *in, int in_w, const float *grad, int h, int w, int c_out, int k, int t0,
                             int co0, float *dw) {
  int off[P];
  for (int p = 0; p < P; p++) off[p] = (t0 + p) / k * in_w + (t0 + p) % k;
  vf acc[P][G];
  for (int p = 0; p < P; p++)
    for (int g = 0; g < G; g++) acc[p][g] = vf{};
  for (int y = 0; y < h; y++) {
    const float *src = in + static_cast<size_t>(y) * in_w, *g_row = grad + static_cast<size_t>(y) * w * c_out + co0;
    for (int x = 0; x < w; x++) {
      vf gv[G];
      for (int g = 0; g < G; g++) gv[g] = load(g_row + static_cast<size_t>(x) * c_out + g * VEC);
      for (int p = 0; p < P; p++) {
        vf s = splat(src[x + off[p]]);
        for (int g = 0; g < G; g++) acc[p][g] += s * gv[g];
      }
    }
  }
  for (int p = 0; p < P; p++)
    for (int g = 0; g < G; g++) {
      float *d = dw + static_cast<size_t>(t0 + p) * c_out + co0 + g * VEC;
      store(d, load(d) + acc[p][g]);
    }
}

template <int P, int G>
inline void image_weight_grad_tail(const float *in, int in_w, const float *grad, int h, int w, int c_out, int k, int t0,
                                   int count, int co0, float *dw) {
  if constexpr (P > 1) {
    if (count == P - 1) return image_weight_grad_block<P - 1, G>(in, in_w, grad, h, w, c_out, k, t0, co0, dw);
    image_weight_grad_tail<P - 1, G>(in, in_w, grad, h, w, c_out, k, t0, count, co0, dw);
  }
}

template <int G>
void weight_grad_group(const float *in, int in_w, int c_in, const float *grad, int h, int w, int c_out, int k, int co0,
                       float *dw) {
  if (c_in == 1) {  // the image: blocks of P taps in row-major order (k * k of them, few tails)
    constexpr int P = NACC / G;
    const int taps = k * k;
    int t = 0;
    for (; t + P <= taps; t += P) image_weight_grad_block<P, G>(in, in_w, grad, h, w, c_out, k, t, co0, dw);
    if (t < taps) image_weight_grad_tail<P, G>(in, in_w, grad, h, w, c_out, k, t, taps - t, co0, dw);
    return;
  }
  // input channels in blocks of P, a power of two: c_in is a multiple of CPAD
  constexpr int P = NACC / G >= 8 ? 8 : (NACC / G >= 4 ? 4 : (NACC / G >= 2 ? 2 : 1));
  for (int ky = 0; ky < k; ky++)
    for (int kx = 0; kx < k; kx++) {
      float *dw_tap = dw + static_cast<size_t>(ky * k + kx) * c_in * c_out;
      for (int ci = 0; ci < c_in; ci += P) weight_grad_block<P, G>(in, in_w, c_in, grad, h, w, c_out, ky, kx, ci, co0, dw_tap);
    }
}

// A hidden layer's weight gradient (packed layout of Layer::w), accumulated into dw.
void weight_grad(const float *in, int in_w, int c_in, const float *grad, int h, int w, int c_out, int k, float *dw) {
  constexpr int kBand = 8;  // the image's: bands of rows, so each band of grad stays in L2 for all the taps
  if (c_in == 1 && h > kBand) {
    for (int y0 = 0; y0 < h; y0 += kBand)
      weight_grad(in + static_cast<size_t>(y0) * in_w, in_w, 1, grad + static_cast<size_t>(y0) * w * c_out,
                  std::min(kBand, h - y0), w, c_out, k, dw);
    return;
  }
  for (int co0 = 0; co0 < c_out; co0 += GMAX * VEC) {
    switch (std::min(GMAX, (c_out - co0) / VEC)) {
      case 4: weight_grad_group<4>(in, in_w, c_in, grad, h, w, c_out, k, co0, dw); break;
      case 3: weight_grad_group<3>(in, in_w, c_in, grad, h, w, c_out, k, co0, dw); break;
      case 2: weight_grad_group<2>(in, in_w, c_in, grad, h, w, c_out, k, co0, dw); break;
      default: weight_grad_group<1>(in, in_w, c_in, grad, h, w, c_out, k, co0, dw); break;
    }
  }
}

// The gradient of a padded plane folded back onto the plane: the interior, plus for replicate padding the
// padding's gradient added to the edge pixels it copied. Then times the ReLU's derivative (act > 0).
void unpad_relu_grad(const float *padded, int h, int w, int c, int pad, Padding padding, const float *act, float *out) {
  const int pw = w + 2 * pad;
  for (int y = 0; y < h; y++)
    std::memcpy(out + static_cast<size_t>(y) * w * c, padded + (static_cast<size_t>(y + pad) * pw + pad) * c,
                static_cast<size_t>(w) * c * sizeof(float));
  if (padding == kReplicate && pad > 0) {
    for (int y = -pad; y < h + pad; y++)
      for (int x = -pad; x < w + pad; x++) {
        if (y >= 0 && y < h && x >= 0 && x < w) continue;
        const float *src = padded + (static_cast<size_t>(y + pad) * pw + x + pad) * c;
        float *dst = out + (static_cast<size_t>(std::min(std::max(y, 0), h - 1)) * w + std::min(std::max(x, 0), w - 1)) * c;
        for (int i = 0; i < c; i++) dst[i] += src[i];
      }
  }
  const size_t n = static_cast<size_t>(h) * w * c;
  for (size_t i = 0; i < n; i += VEC) {
    vf a = load(act + i), g = load(out + i);
    store(out + i, a > 0 ? g : vf{});
  }
}

// Layer `l` with its taps flipped and its channels swapped, bias zero: the input gradient of a padded plane
// is this layer applied to the output gradient zero-padded by k - 1 (a "full" convolution).
Layer transposed(const Layer &l) {
  Layer t{l.k, l.c_out, l.c_in, {}, std::vector<float>(l.c_in, 0.f)};
  t.w.assign(l.w.size(), 0.f);
  const int taps = l.k * l.k;
  for (int tap = 0; tap < taps; tap++)
    for (int ci = 0; ci < l.c_in; ci++)
      for (int co = 0; co < l.c_out; co++)
        t.w[(static_cast<size_t>(taps - 1 - tap) * l.c_out + co) * l.c_in + ci] =
            l.w[(static_cast<size_t>(tap) * l.c_in + ci) * l.c_out + co];
  return t;
}

// The last layer's weight gradient (one output channel): dw[ky][kx][c] += sum over y < h, x of dy[y][x]
// in[y + ky][x + kx][c], with dy zero-padded by K - 1 on each side (qy, qw floats a row): along each input
// row, every input pixel is loaded once for the K taps kx it meets (x = v - kx).
template <int K, int G>
void last_weight_grad_group(const float *in, int in_w, int c, const float *qy, int qw, int h, int c0, float *dw) {
  for (int ky = 0; ky < K; ky++) {
    vf acc[K][G];
    for (int kx = 0; kx < K; kx++)
      for (int g = 0; g < G; g++) acc[kx][g] = vf{};
    for (int y = 0; y < h; y++) {
      const float *src = in + static_cast<size_t>(y + ky) * in_w * c + c0;
      const float *d = qy + static_cast<size_t>(y + K - 1) * qw + K - 1;
      for (int v = 0; v < in_w; v++) {
        vf pv[G];
        for (int g = 0; g < G; g++) pv[g] = load(src + static_cast<size_t>(v) * c + g * VEC);
        for (int kx = 0; kx < K; kx++) {
          vf s = splat(d[v - kx]);
          for (int g = 0; g < G; g++) acc[kx][g] += s * pv[g];
        }
      }
    }
    for (int kx = 0; kx < K; kx++)
      for (int g = 0; g < G; g++) {
        float *o = dw + static_cast<size_t>(ky * K + kx) * c + c0 + g * VEC;
        store(o, load(o) + acc[kx][g]);
      }
  }
}

template <int K>
void last_weight_grad_k(const float *in, int in_w, int c, const float *qy, int qw, int h, float *dw) {
  int c0 = 0;
  for (; c0 + 2 * VEC <= c; c0 += 2 * VEC) last_weight_grad_group<K, 2>(in, in_w, c, qy, qw, h, c0, dw);
  if (c0 < c) last_weight_grad_group<K, 1>(in, in_w, c, qy, qw, h, c0, dw);
}

// `in`: the last layer's padded input plane (in_w pixels of c floats a row; the output is in_w - k + 1 wide).
void last_weight_grad(const float *in, int in_w, int c, const float *qy, int qw, int h, int k, float *dw) {
  switch (k) {  // parse_net admits odd kernels up to 7 for the last layer
    case 1: return last_weight_grad_k<1>(in, in_w, c, qy, qw, h, dw);
    case 3: return last_weight_grad_k<3>(in, in_w, c, qy, qw, h, dw);
    case 5: return last_weight_grad_k<5>(in, in_w, c, qy, qw, h, dw);
    default: return last_weight_grad_k<7>(in, in_w, c, qy, qw, h, dw);
  }
}

struct Grads {  // one thread's sums, packed layouts
  std::vector<float> w[3], b[3];
  explicit Grads(const Net &net) {
    for (int i = 0; i < 3; i++) {
      w[i].assign(net.layers[i].w.size(), 0.f);
      b[i].assign(net.layers[i].b.size(), 0.f);
    }
  }
};

int train_backward(Padding padding, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Net net;
  if (nparam != 16) return 1;
  if (int error = parse_net(padding, nparam, params, ndims, shapes, dtypes, net)) return error;
  // inputs 7-9: a1, a2, dy as the training forward returned them (dy in y's place); outputs: the gradients
  if (!activation_shapes_match(net, 7, ndims, shapes) || !output_shape_matches(net, 9, ndims, shapes)) return 4;
  for (int i = 1; i <= 6; i++) {
    if (ndims[9 + i] != ndims[i]) return 4;
    for (int d = 0; d < ndims[i]; d++)
      if (shapes[9 + i][d] != shapes[i][d]) return 4;
  }
  const Sizes size = image_sizes(net);
  const int *h = net.heights, *w = net.widths, *p = net.pads;
  const Layer &l1 = net.layers[0], &l2 = net.layers[1], &l3 = net.layers[2];
  const Layer l2t = transposed(l2), l3t = transposed(l3);
  const int c1 = l1.c_out, c2 = l2.c_out, k2 = l2.k, k3 = l3.k;
  // Winograd for layer 2's weight gradient (on its output grid) and input gradient (a full convolution)
  const bool wino_wgrad = use_winograd(l2, h[2], w[2]), wino_dgrad = use_winograd(l2t, h[1] + 2 * p[1], w[1] + 2 * p[1]);
  const WinoLayer l2tw = wino_dgrad ? wino_pack(l2t) : WinoLayer{};
  const int threads = std::max(1, std::min(available_cpus(), net.batch));
  std::vector<Grads> sums(threads, Grads(net));
  parallel(net.batch, threads, [&](int t, int first, int last) {
    Grads &sum = sums[t];
    const bool wino = wino_wgrad || wino_dgrad;
    WinoScratch scratch(wino ? std::max(c1, c2) : 0, wino ? std::max(c1, c2) : 0);
    Buffer mw(wino_wgrad ? static_cast<size_t>(kWinoTaps) * c1 * c2 : 0);
    const int p2w = w[2] + 2 * p[2], p1w = w[1] + 2 * p[1], p0w = w[0] + 2 * p[0];
    const int qh = h[2] + 2 * (k2 - 1), qw = w[2] + 2 * (k2 - 1);
    // each written whole before it is read (pad_plane, conv_plane, wino_conv_plane, unpad_relu_grad)
    Buffer p0(static_cast<size_t>(h[0] + 2 * p[0]) * p0w, false), p1(static_cast<size_t>(h[1] + 2 * p[1]) * p1w * c1, false);
    Buffer p2(static_cast<size_t>(h[2] + 2 * p[2]) * p2w * c2, false);
    Buffer dp2(static_cast<size_t>(h[2] + 2 * p[2]) * p2w * c2, false);
    Buffer dz2(size.a2, false), q(static_cast<size_t>(qh) * qw * c2, false);
    Buffer dp1(static_cast<size_t>(h[1] + 2 * p[1]) * p1w * c1, false), dz1(size.a1, false);
    const int qyw = w[3] + 2 * (k3 - 1);
    Buffer qy(static_cast<size_t>(h[3] + 2 * (k3 - 1)) * qyw, false);
    for (int n = first; n < last; n++) {
      const float *a1 = static_cast<const float *>(params[7]) + n * size.a1;
      const float *a2 = static_cast<const float *>(params[8]) + n * size.a2;
      const float *dy = static_cast<const float *>(params[9]) + n * size.y;
      // layer 3 (one output channel): the gradient of its padded input is a "full" convolution of dy (one
      // channel, zero-padded by k3 - 1) with the flipped weights, its weight gradient a correlation of dy with it
      pad_plane(a2, h[2], w[2], c2, p[2], padding, p2.data);
      pad_plane(dy, h[3], w[3], 1, k3 - 1, kZeros, qy.data);
      conv_plane(qy.data, qyw, l3t, h[2] + 2 * p[2], p2w, dp2.data, false, k3 - 1);
      last_weight_grad(p2.data, p2w, c2, qy.data, qyw, h[3], k3, sum.w[2].data());
      for (size_t i = 0; i < size.y; i++) sum.b[2][0] += dy[i];
      // layer 2
      unpad_relu_grad(dp2.data, h[2], w[2], c2, p[2], padding, a2, dz2.data);
      for (size_t i = 0; i < size.a2; i += c2)
        for (int c = 0; c < c2; c++) sum.b[1][c] += dz2.data[i + c];
      pad_plane(a1, h[1], w[1], c1, p[1], padding, p1.data);
      if (wino_wgrad)
        wino_weight_grad(p1.data, p1w, c1, dz2.data, h[2], w[2], c2, mw.data, scratch);
      else
        weight_grad(p1.data, p1w, c1, dz2.data, h[2], w[2], c2, k2, sum.w[1].data());
      pad_plane(dz2.data, h[2], w[2], c2, k2 - 1, kZeros, q.data);
      if (wino_dgrad)
        wino_conv_plane(q.data, qw, l2tw, h[1] + 2 * p[1], p1w, dp1.data, false, scratch, k2 - 1);
      else
        conv_plane(q.data, qw, l2t, h[1] + 2 * p[1], p1w, dp1.data, false, k2 - 1);
      // layer 1 (the image needs no gradient)
      unpad_relu_grad(dp1.data, h[1], w[1], c1, p[1], padding, a1, dz1.data);
      for (size_t i = 0; i < size.a1; i += c1)
        for (int c = 0; c < c1; c++) sum.b[0][c] += dz1.data[i + c];
      pad_plane(static_cast<const float *>(params[0]) + n * size.x, h[0], w[0], 1, p[0], padding, p0.data);
      weight_grad(p0.data, p0w, 1, dz1.data, h[1], w[1], c1, l1.k, sum.w[0].data());
    }
    if (wino_wgrad) wino_weight_grad_unpack(mw.data, c1, c2, sum.w[1].data());
  });
  // sums of the threads, unpacked to the Parameters' layouts [c_out, c_in, k, k] without channel padding
  const int real_in[3] = {1, net.n1, net.n2}, real_out[3] = {net.n1, net.n2, 1};
  for (int i = 0; i < 3; i++) {
    const Layer &l = net.layers[i];
    float *dw = static_cast<float *>(params[10 + 2 * i]), *db = static_cast<float *>(params[11 + 2 * i]);
    for (int co = 0; co < real_out[i]; co++) {
      float b = 0.f;
      for (const Grads &s : sums) b += s.b[i][co];
      db[co] = b;
      for (int ci = 0; ci < real_in[i]; ci++)
        for (int tap = 0; tap < l.k * l.k; tap++) {
          float v = 0.f;
          for (const Grads &s : sums) v += s.w[i][(static_cast<size_t>(tap) * l.c_in + ci) * l.c_out + co];
          dw[(static_cast<size_t>(co) * real_in[i] + ci) * l.k * l.k + tap] = v;
        }
    }
  }
  return 0;
}

}  // namespace

// Error codes: 1 wrong tensor count, 2 not float32, 3 not an SRCNN's weights (or an image too small for
// 'valid'), 4 other tensors of unexpected shapes, 5 out of memory or another failure inside.
#define ENTRY(name, body, mode)                                                                            \
  int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) { \
    try {                                                                                                  \
      return body(mode, nparam, params, ndims, shapes, dtypes);                                            \
    } catch (...) {                                                                                        \
      return 5;                                                                                            \
    }                                                                                                      \
  }

extern "C" {
ENTRY(srcnn_forward_valid, infer, kValid)
ENTRY(srcnn_forward_zeros, infer, kZeros)
ENTRY(srcnn_forward_replicate, infer, kReplicate)
ENTRY(srcnn_train_forward_valid, train_forward, kValid)
ENTRY(srcnn_train_forward_zeros, train_forward, kZeros)
ENTRY(srcnn_train_forward_replicate, train_forward, kReplicate)
ENTRY(srcnn_train_backward_valid, train_backward, kValid)
ENTRY(srcnn_train_backward_zeros, train_backward, kZeros)
ENTRY(srcnn_train_backward_replicate, train_backward, kReplicate)
}
