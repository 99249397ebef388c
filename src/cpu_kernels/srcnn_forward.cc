// SRCNN inference on CPU as one MindSpore AOT custom operator (ops.Custom, func_type="aot"): the three
// convolutions, biases and ReLUs fused in a sliding window of rows, so the 64-channel activations stay in the
// cache instead of making round trips to memory between unfused primitives (src/fused_cpu.py builds and
// calls it; tests/test_fused_cpu.py checks it against nn.Conv2d).
//
// Inputs: x [N,1,H,W], w1 [n1,1,k1,k1], b1 [n1], w2 [n2,n1,k2,k2], b2 [n2], w3 [1,n2,k3,k3], b3 [1] (float32,
// the nn.Conv2d Parameters as they are); output [N,1,Ho,Wo]. One entry point per padding mode.
// Activations are pixel-major (channels innermost, padded to a multiple of CPAD with zero weights) and each
// block of output pixels x channel vectors is accumulated in registers. Rows are split between threads.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
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

struct Buffer {
  float *data = nullptr;
  explicit Buffer(size_t n) {
    if (posix_memalign(reinterpret_cast<void **>(&data), 64, std::max<size_t>(n, 1) * sizeof(float)) != 0) data = nullptr;
    else std::memset(data, 0, std::max<size_t>(n, 1) * sizeof(float));
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
inline void conv_block(const float *const *rows, const Layer &l, int c0, int x, float *out, int out_stride) {
  vf acc[P][G];
  for (int g = 0; g < G; g++) {
    vf bias = load(&l.b[c0 + g * VEC]);
    for (int p = 0; p < P; p++) acc[p][g] = bias;
  }
  for (int ky = 0; ky < l.k; ky++) {
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
    for (int g = 0; g < G; g++) store(out + static_cast<size_t>(x + p) * out_stride + c0 + g * VEC, relu(acc[p][g]));
}

template <int G>
void conv_row_group(const float *const *rows, const Layer &l, int c0, int width, float *out) {
  constexpr int P = NACC / G;
  int x = 0;
  for (; x + P <= width; x += P) conv_block<P, G>(rows, l, c0, x, out, l.c_out);
  for (; x < width; x++) conv_block<1, G>(rows, l, c0, x, out, l.c_out);
}

// A hidden layer's output row (width pixels, ReLU applied) from its k input rows.
void conv_row(const float *const *rows, const Layer &l, int width, float *out) {
  for (int c0 = 0; c0 < l.c_out; c0 += GMAX * VEC) {
    switch (std::min(GMAX, (l.c_out - c0) / VEC)) {
      case 4: conv_row_group<4>(rows, l, c0, width, out); break;
      case 3: conv_row_group<3>(rows, l, c0, width, out); break;
      case 2: conv_row_group<2>(rows, l, c0, width, out); break;
      default: conv_row_group<1>(rows, l, c0, width, out); break;
    }
  }
}

// The last layer (one output channel, no ReLU): vectors run along the input channels, summed at the end.
template <int P>
inline void last_block(const float *const *rows, const Layer &l, int x, float *out) {
  constexpr int GV = CPAD / VEC;
  vf acc[P][GV] = {};
  for (int ky = 0; ky < l.k; ky++) {
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

void last_row(const float *const *rows, const Layer &l, int width, float *out) {
  constexpr int P = NACC / (CPAD / VEC);
  int x = 0;
  for (; x + P <= width; x += P) last_block<P>(rows, l, x, out);
  for (; x < width; x++) last_block<1>(rows, l, x, out);
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

struct Image {
  const Layer *layers;
  Padding padding;
  int pads[3];
  int heights[4], widths[4];  // [0]: the padded-less input; [i]: layer i's output
  const float *padded;        // the input with layer 1's padding, (heights[0] + 2 pads[0]) x (widths[0] + 2 pads[0])
  int padded_width;
};

// Layer-1 and layer-2 output rows on demand, then the output rows [r0, r1) of one image.
void run_rows(const Image &im, float *out, int r0, int r1) {
  const Layer &l1 = im.layers[0], &l2 = im.layers[1], &l3 = im.layers[2];
  RowRing ring1(l2.k, (im.widths[1] + 2 * im.pads[1]) * l1.c_out);
  RowRing ring2(l3.k, (im.widths[2] + 2 * im.pads[2]) * l2.c_out);
  Buffer zeros(static_cast<size_t>(std::max(ring1.stride, ring2.stride)));
  std::vector<const float *> rows(std::max(l1.k, std::max(l2.k, l3.k)));

  auto layer1 = [&](int r) -> const float * {
    float *dst = ring1.slot(r);
    if (ring1.tag[r % ring1.slots] != r) {
      for (int ky = 0; ky < l1.k; ky++) rows[ky] = im.padded + static_cast<size_t>(r + ky) * im.padded_width;
      conv_row(rows.data(), l1, im.widths[1], dst + static_cast<size_t>(im.pads[1]) * l1.c_out);
      pad_columns(dst, im.widths[1], im.pads[1], l1.c_out, im.padding);
      ring1.tag[r % ring1.slots] = r;
    }
    return dst;
  };
  auto layer2 = [&](int r) -> const float * {
    float *dst = ring2.slot(r);
    if (ring2.tag[r % ring2.slots] != r) {
      const float *in[8];
      for (int ky = 0; ky < l2.k; ky++) {
        int src = source_row(r + ky - im.pads[1], im.heights[1], im.padding);
        in[ky] = src < 0 ? zeros.data : layer1(src);
      }
      conv_row(in, l2, im.widths[2], dst + static_cast<size_t>(im.pads[2]) * l2.c_out);
      pad_columns(dst, im.widths[2], im.pads[2], l2.c_out, im.padding);
      ring2.tag[r % ring2.slots] = r;
    }
    return dst;
  };
  for (int r = r0; r < r1; r++) {
    const float *in[8];
    for (int ky = 0; ky < l3.k; ky++) {
      int src = source_row(r + ky - im.pads[2], im.heights[2], im.padding);
      in[ky] = src < 0 ? zeros.data : layer2(src);
    }
    last_row(in, l3, im.widths[3], out + static_cast<size_t>(r) * im.widths[3]);
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

int forward(Padding padding, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  if (nparam != 8) return 1;
  for (int i = 0; i < nparam; i++)
    if (std::string(dtypes[i]) != "float32" && std::string(dtypes[i]) != "float") return 2;
  if (ndims[0] != 4 || shapes[0][1] != 1 || ndims[1] != 4 || ndims[3] != 4 || ndims[5] != 4) return 3;
  const int n1 = static_cast<int>(shapes[1][0]), k1 = static_cast<int>(shapes[1][2]);
  const int n2 = static_cast<int>(shapes[3][0]), k2 = static_cast<int>(shapes[3][2]);
  const int k3 = static_cast<int>(shapes[5][2]);
  if (shapes[3][1] != n1 || shapes[5][1] != n2 || shapes[5][0] != 1 || k2 > 8 || k3 > 8) return 3;
  const Layer layers[3] = {
      pack(static_cast<const float *>(params[1]), static_cast<const float *>(params[2]), n1, 1, k1, false, true),
      pack(static_cast<const float *>(params[3]), static_cast<const float *>(params[4]), n2, n1, k2, true, true),
      pack(static_cast<const float *>(params[5]), static_cast<const float *>(params[6]), 1, n2, k3, true, false)};

  Image im{layers, padding, {}, {}, {}, nullptr, 0};
  im.heights[0] = static_cast<int>(shapes[0][2]);
  im.widths[0] = static_cast<int>(shapes[0][3]);
  for (int i = 0; i < 3; i++) {
    int k = layers[i].k;
    im.pads[i] = padding == kValid ? 0 : (k - 1) / 2;
    im.heights[i + 1] = im.heights[i] - k + 1 + 2 * im.pads[i];
    im.widths[i + 1] = im.widths[i] - k + 1 + 2 * im.pads[i];
  }
  if (im.heights[3] < 1 || im.widths[3] < 1 || shapes[7][2] != im.heights[3] || shapes[7][3] != im.widths[3]) return 4;

  const int batch = static_cast<int>(shapes[0][0]), h = im.heights[0], w = im.widths[0], p = im.pads[0];
  im.padded_width = w + 2 * p;
  Buffer padded(static_cast<size_t>(h + 2 * p) * im.padded_width);
  im.padded = padded.data;
  const int threads = std::max(1, std::min(available_cpus(), im.heights[3] / 16));
  for (int n = 0; n < batch; n++) {
    const float *x = static_cast<const float *>(params[0]) + static_cast<size_t>(n) * h * w;
    for (int r = -p; r < h + p; r++) {  // layer 1's padding, once per image
      float *dst = padded.data + static_cast<size_t>(r + p) * im.padded_width;
      int src = source_row(r, h, padding);
      if (src < 0) {
        std::memset(dst, 0, im.padded_width * sizeof(float));
        continue;
      }
      std::memcpy(dst + p, x + static_cast<size_t>(src) * w, w * sizeof(float));
      for (int c = 0; c < p; c++) {
        dst[c] = padding == kReplicate ? dst[p] : 0.f;
        dst[p + w + c] = padding == kReplicate ? dst[p + w - 1] : 0.f;
      }
    }
    float *out = static_cast<float *>(params[7]) + static_cast<size_t>(n) * im.heights[3] * im.widths[3];
    std::vector<std::thread> pool;
    const int rows = im.heights[3];
    for (int t = 1; t < threads; t++) pool.emplace_back(run_rows, std::cref(im), out, rows * t / threads, rows * (t + 1) / threads);
    run_rows(im, out, 0, rows / threads);
    for (auto &th : pool) th.join();
  }
  return 0;
}

}  // namespace

extern "C" {
int srcnn_forward_valid(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return forward(kValid, nparam, params, ndims, shapes, dtypes);
}
int srcnn_forward_zeros(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return forward(kZeros, nparam, params, ndims, shapes, dtypes);
}
int srcnn_forward_replicate(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return forward(kReplicate, nparam, params, ndims, shapes, dtypes);
}
}
