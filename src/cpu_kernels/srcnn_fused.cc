// SRCNN on CPU as MindSpore AOT custom operators (ops.Custom, func_type="aot"; src/fused_cpu.py builds and
// calls them; tests/test_fused_cpu.py and tests/test_network.py check them against nn.Conv2d):
// - srcnn_forward_<padding>: inference, the three convolutions, biases and ReLUs fused in a sliding window of
//   rows, so the 64-channel activations stay in the cache instead of making round trips to memory between
//   unfused primitives. Inputs x [N,1,H,W], w1 [n1,1,k1,k1], b1 [n1], w2 [n2,n1,k2,k2], b2 [n2],
//   w3 [1,n2,k3,k3], b3 [1] (float32, the nn.Conv2d Parameters as they are); output [N,1,Ho,Wo].
// - srcnn_train_forward_<padding>: the same inputs; outputs y and both hidden activations for the backward.
// - srcnn_train_backward_<padding>: the same inputs, the activations and dy; outputs the six gradients.
// Activations are pixel-major (channels innermost, padded to a multiple of CPAD with zero weights) and each
// block of output pixels x channel vectors is accumulated in registers (GCC/Clang vector extensions: one
// source for AVX-512, AVX2 and NEON). Rows (inference) or images (training) are split between threads.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <stdexcept>
#include <sched.h>
#include <string>
#include <thread>
#include <vector>

#if defined(__AVX512F__)
#define VEC 16
#define NACC 24
#elif defined(__AVX__)
#define VEC 8
#define NACC 12
#else
#define VEC 4
#define NACC 12
#endif
#define CPAD 16  // channel padding: a multiple of every VEC
#define GMAX 4   // channel vectors per register block

typedef float vf __attribute__((vector_size(VEC * 4), aligned(4)));

namespace {

enum Padding { kValid, kZeros, kReplicate };

struct Buffer {  // zeroed, 64-byte aligned; throws std::bad_alloc (the entry points return an error code)
  float *data = nullptr;
  explicit Buffer(size_t n) {
    if (posix_memalign(reinterpret_cast<void **>(&data), 64, std::max<size_t>(n, 1) * sizeof(float)) != 0)
      throw std::bad_alloc();
    std::memset(data, 0, std::max<size_t>(n, 1) * sizeof(float));
  }
  ~Buffer() { free(data); }
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
};

inline vf load(const float *p) { return *reinterpret_cast<const vf *>(p); }
inline void store(float *p, vf v) { *reinterpret_cast<vf *>(p) = v; }
inline vf splat(float s) { return vf{} + s; }
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
};

// Layer-1 and layer-2 output rows on demand, then the output rows [r0, r1) of one image.
void run_rows(const Image &im, float *out, int r0, int r1) {
  const Net &net = im.net;
  const Layer &l1 = net.layers[0], &l2 = net.layers[1], &l3 = net.layers[2];
  RowRing ring1(l2.k, (net.widths[1] + 2 * net.pads[1]) * l1.c_out);
  RowRing ring2(l3.k, (net.widths[2] + 2 * net.pads[2]) * l2.c_out);
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
  auto layer2 = [&](int r) -> const float * {
    float *dst = ring2.slot(r);
    if (ring2.tag[r % ring2.slots] != r) {
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
  const Image im{net, padded.data, w + 2 * p};
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
  parallel(net.batch, available_cpus(), [&](int, int first, int last) {
    Buffer p0(static_cast<size_t>(h[0] + 2 * p[0]) * (w[0] + 2 * p[0]));
    Buffer p1(static_cast<size_t>(h[1] + 2 * p[1]) * (w[1] + 2 * p[1]) * net.layers[0].c_out);
    Buffer p2(static_cast<size_t>(h[2] + 2 * p[2]) * (w[2] + 2 * p[2]) * net.layers[1].c_out);
    for (int n = first; n < last; n++) {
      float *a1 = static_cast<float *>(params[8]) + n * size.a1, *a2 = static_cast<float *>(params[9]) + n * size.a2;
      pad_plane(static_cast<const float *>(params[0]) + n * size.x, h[0], w[0], 1, p[0], padding, p0.data);
      conv_plane(p0.data, w[0] + 2 * p[0], net.layers[0], h[1], w[1], a1, true);
      pad_plane(a1, h[1], w[1], net.layers[0].c_out, p[1], padding, p1.data);
      conv_plane(p1.data, w[1] + 2 * p[1], net.layers[1], h[2], w[2], a2, true);
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

template <int P, int G>
inline void weight_grad_tail(const float *in, int in_w, const float *grad, int h, int w, int c_out, int ky, int kx,
                             int count, int co0, float *dw_tap) {
  if constexpr (P > 1) {
    if (count == P - 1) return weight_grad_block<P - 1, G>(in, in_w, 1, grad, h, w, c_out, ky, kx, 0, co0, dw_tap);
    weight_grad_tail<P - 1, G>(in, in_w, grad, h, w, c_out, ky, kx, count, co0, dw_tap);
  }
}

template <int G>
void weight_grad_group(const float *in, int in_w, int c_in, const float *grad, int h, int w, int c_out, int k, int co0,
                       float *dw) {
  if (c_in == 1) {  // the image: a block of P taps along x (pixel x + kx + p is tap kx + p's input)
    constexpr int P = NACC / G;
    for (int ky = 0; ky < k; ky++) {
      int kx = 0;
      for (; kx + P <= k; kx += P)
        weight_grad_block<P, G>(in, in_w, 1, grad, h, w, c_out, ky, kx, 0, co0, dw + static_cast<size_t>(ky * k + kx) * c_out);
      if (kx < k)
        weight_grad_tail<P, G>(in, in_w, grad, h, w, c_out, ky, kx, k - kx, co0, dw + static_cast<size_t>(ky * k + kx) * c_out);
    }
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
  const Layer l2t = transposed(l2);
  const int c1 = l1.c_out, c2 = l2.c_out, k2 = l2.k, k3 = l3.k;
  const int threads = std::max(1, std::min(available_cpus(), net.batch));
  std::vector<Grads> sums(threads, Grads(net));
  parallel(net.batch, threads, [&](int t, int first, int last) {
    Grads &sum = sums[t];
    const int p2w = w[2] + 2 * p[2], p1w = w[1] + 2 * p[1], p0w = w[0] + 2 * p[0];
    const int qh = h[2] + 2 * (k2 - 1), qw = w[2] + 2 * (k2 - 1);
    Buffer p0(static_cast<size_t>(h[0] + 2 * p[0]) * p0w), p1(static_cast<size_t>(h[1] + 2 * p[1]) * p1w * c1);
    Buffer p2(static_cast<size_t>(h[2] + 2 * p[2]) * p2w * c2), dp2(static_cast<size_t>(h[2] + 2 * p[2]) * p2w * c2);
    Buffer dz2(size.a2), q(static_cast<size_t>(qh) * qw * c2), dp1(static_cast<size_t>(h[1] + 2 * p[1]) * p1w * c1);
    Buffer dz1(size.a1);
    for (int n = first; n < last; n++) {
      const float *a1 = static_cast<const float *>(params[7]) + n * size.a1;
      const float *a2 = static_cast<const float *>(params[8]) + n * size.a2;
      const float *dy = static_cast<const float *>(params[9]) + n * size.y;
      // layer 3: one output channel; the gradient of its padded input by scattering dy * w3
      pad_plane(a2, h[2], w[2], c2, p[2], padding, p2.data);
      std::memset(dp2.data, 0, static_cast<size_t>(h[2] + 2 * p[2]) * p2w * c2 * sizeof(float));
      for (int y = 0; y < h[3]; y++)
        for (int x = 0; x < w[3]; x++) {
          const float g = dy[static_cast<size_t>(y) * w[3] + x];
          sum.b[2][0] += g;
          for (int ky = 0; ky < k3; ky++)
            for (int kx = 0; kx < k3; kx++) {
              const size_t at = (static_cast<size_t>(y + ky) * p2w + x + kx) * c2;
              const float *wt = &l3.w[static_cast<size_t>(ky * k3 + kx) * c2];
              float *dwt = &sum.w[2][static_cast<size_t>(ky * k3 + kx) * c2];
              for (int c = 0; c < c2; c += VEC) {
                store(dp2.data + at + c, load(dp2.data + at + c) + g * load(wt + c));
                store(dwt + c, load(dwt + c) + g * load(p2.data + at + c));
              }
            }
        }
      // layer 2
      unpad_relu_grad(dp2.data, h[2], w[2], c2, p[2], padding, a2, dz2.data);
      for (size_t i = 0; i < size.a2; i += c2)
        for (int c = 0; c < c2; c++) sum.b[1][c] += dz2.data[i + c];
      pad_plane(a1, h[1], w[1], c1, p[1], padding, p1.data);
      weight_grad(p1.data, p1w, c1, dz2.data, h[2], w[2], c2, k2, sum.w[1].data());
      pad_plane(dz2.data, h[2], w[2], c2, k2 - 1, kZeros, q.data);
      conv_plane(q.data, qw, l2t, h[1] + 2 * p[1], p1w, dp1.data, false, k2 - 1);
      // layer 1 (the image needs no gradient)
      unpad_relu_grad(dp1.data, h[1], w[1], c1, p[1], padding, a1, dz1.data);
      for (size_t i = 0; i < size.a1; i += c1)
        for (int c = 0; c < c1; c++) sum.b[0][c] += dz1.data[i + c];
      pad_plane(static_cast<const float *>(params[0]) + n * size.x, h[0], w[0], 1, p[0], padding, p0.data);
      weight_grad(p0.data, p0w, 1, dz1.data, h[1], w[1], c1, l1.k, sum.w[0].data());
    }
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
