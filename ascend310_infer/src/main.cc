/**
 * SRCNN MINDIR inference harness (Ascend 310 / CPU) on the MindSpore Lite C++ API.
 *
 * For every *.bin file of --input_path (sorted by name) it copies the file into
 * model input 0, runs Model::Predict and writes output 0 to
 * <result_path>/<stem>_0.bin, then prints the average Predict latency.
 * Any failure ends the program with a one-line "error: ..." on stderr and a
 * non-zero exit status.
 */
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/data_type.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "utils.h"

namespace {

using srcnn_infer::DeviceKind;
using srcnn_infer::OneLine;
using srcnn_infer::Options;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Fail(const std::string &message) {
  std::cerr << "error: " << OneLine(message) << std::endl;
  return kExitFailure;
}

std::string StatusText(const mindspore::Status &status) {
  std::string text = OneLine(status.ToString());
  if (text.empty()) {
    text = "status code " + std::to_string(static_cast<uint32_t>(status.StatusCode()));
  }
  return text;
}

std::string ShapeText(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    os << (i ? "," : "") << shape[i];
  }
  os << "]";
  return os.str();
}

std::string DataTypeText(mindspore::DataType type) {
  switch (type) {
    case mindspore::DataType::kNumberTypeFloat32:
      return "float32";
    case mindspore::DataType::kNumberTypeFloat16:
      return "float16";
    case mindspore::DataType::kNumberTypeUInt8:
      return "uint8";
    case mindspore::DataType::kNumberTypeInt32:
      return "int32";
    default:
      return "data type " + std::to_string(static_cast<int>(type));
  }
}

std::shared_ptr<mindspore::Context> MakeContext(const Options &opts) {
  auto context = std::make_shared<mindspore::Context>();
  auto &device_list = context->MutableDeviceInfo();
  if (opts.device == DeviceKind::kAscend) {
    auto ascend_info = std::make_shared<mindspore::AscendDeviceInfo>();
    ascend_info->SetDeviceID(opts.device_id);
    device_list.push_back(ascend_info);
  } else {
    device_list.push_back(std::make_shared<mindspore::CPUDeviceInfo>());
  }
  return context;
}

int Run(const Options &opts) {
  if (!srcnn_infer::IsRegularFile(opts.mindir_path)) {
    return Fail("model file " + opts.mindir_path + " does not exist or is not a file");
  }
  if (!srcnn_infer::IsDirectory(opts.input_path)) {
    return Fail("input folder " + opts.input_path + " does not exist or is not a folder");
  }
  std::string error;
  std::vector<std::string> files;
  if (!srcnn_infer::ListBinFiles(opts.input_path, &files, &error)) {
    return Fail(error);
  }
  if (files.empty()) {
    return Fail("no .bin files in " + opts.input_path);
  }
  if (!srcnn_infer::MakeDirs(opts.result_path, &error)) {
    return Fail(error);
  }

  mindspore::Model model;
  const mindspore::Status build_status = model.Build(opts.mindir_path, mindspore::kMindIR, MakeContext(opts));
  if (build_status != mindspore::kSuccess) {
    std::string where = srcnn_infer::DeviceName(opts.device);
    if (opts.device == DeviceKind::kAscend) {
      where += " device " + std::to_string(opts.device_id);
    }
    return Fail("cannot build model " + opts.mindir_path + " on " + where + ": " + StatusText(build_status));
  }

  std::vector<mindspore::MSTensor> inputs = model.GetInputs();
  if (inputs.empty()) {
    return Fail("model " + opts.mindir_path + " has no inputs");
  }
  mindspore::MSTensor &input = inputs[0];
  const size_t input_size = input.DataSize();

  std::vector<char> data;
  std::vector<mindspore::MSTensor> outputs;
  double total_ms = 0.0;
  for (const std::string &file : files) {
    if (!srcnn_infer::ReadBinaryFile(file, &data, &error)) {
      return Fail(error);
    }
    if (data.size() != input_size) {
      return Fail(file + " has " + std::to_string(data.size()) + " bytes but model input 0 expects " +
                  std::to_string(input_size) + " bytes (shape " + ShapeText(input.Shape()) + ", " +
                  DataTypeText(input.DataType()) + ")");
    }
    void *dst = input.MutableData();
    if (dst == nullptr) {
      return Fail("cannot get the buffer of model input 0");
    }
    std::copy(data.begin(), data.end(), static_cast<char *>(dst));

    outputs.clear();
    const auto start = std::chrono::steady_clock::now();
    const mindspore::Status status = model.Predict(inputs, &outputs);
    const auto end = std::chrono::steady_clock::now();
    if (status != mindspore::kSuccess) {
      return Fail("Predict failed on " + file + ": " + StatusText(status));
    }
    total_ms += std::chrono::duration<double, std::milli>(end - start).count();
    if (outputs.empty()) {
      return Fail("Predict returned no outputs for " + file);
    }

    mindspore::MSTensor &output = outputs[0];
    const void *out_data = output.MutableData();
    if (out_data == nullptr && output.DataSize() != 0) {
      return Fail("cannot get the data of output 0 for " + file);
    }
    const std::string out_path =
        srcnn_infer::JoinPath(opts.result_path, srcnn_infer::FileStem(file) + "_0.bin");
    if (!srcnn_infer::WriteBinaryFile(out_path, out_data, output.DataSize(), &error)) {
      return Fail(error);
    }
  }

  char line[128];
  std::snprintf(line, sizeof(line), "%zu images, average latency %.3f ms", files.size(),
                total_ms / static_cast<double>(files.size()));
  std::cout << line << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  const std::string prog = argc > 0 && argv[0] != nullptr ? argv[0] : "main";
  Options opts;
  std::string error;
  if (!srcnn_infer::ParseArgs(argc, argv, &opts, &error)) {
    std::cerr << "error: " << OneLine(error) << std::endl;
    return kExitUsage;
  }
  if (opts.help) {
    std::cout << srcnn_infer::Usage(prog);
    return 0;
  }
  return Run(opts);
}
