/**
 * SRCNN inference harness (Ascend 310 / CPU) on the MindSpore Lite C++ API.
 *
 * It loads a MINDIR model the Lite runtime reads (on CPU: export.py's ONNX model converted by
 * scripts/convert_for_lite.py) whose input 0 is float32 [1,1,H,W] (a dynamic H, W or N is resized to
 * --input_shape), and for every *.bin file of --input_path (sorted by name) copies the file into input
 * 0, runs Model::Predict and writes output 0 to <result_path>/<stem>_0.bin, then prints the average
 * Predict latency. Its first stdout line names the program, the Lite version and the model, so a log
 * shows that this harness ran. Any failure ends the program with a one-line "error: ..." on stderr and
 * a non-zero exit status.
 */
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
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
  if (!srcnn_infer::MakeDirs(opts.result_path, &error) || !srcnn_infer::CheckWritable(opts.result_path, &error)) {
    return Fail(error);
  }

  mindspore::Model model;
  const mindspore::Status build_status = model.Build(opts.mindir_path, mindspore::kMindIR, MakeContext(opts));
  if (build_status != mindspore::kSuccess) {
    std::string where = srcnn_infer::DeviceName(opts.device);
    if (opts.device == DeviceKind::kAscend) {
      where += " device " + std::to_string(opts.device_id);
    }
    return Fail("cannot build model " + opts.mindir_path + " on " + where +
                " (not a model this MindSpore Lite runtime reads: truncated, not a MINDIR, or a MINDIR of "
                "another MindSpore version; on CPU convert export.py's ONNX model with "
                "scripts/convert_for_lite.py): " + StatusText(build_status));
  }

  std::vector<mindspore::MSTensor> inputs = model.GetInputs();
  if (inputs.size() != 1) {
    return Fail("model " + opts.mindir_path + " has " + std::to_string(inputs.size()) +
                " inputs, expected one float32 [1,1,H,W] input");
  }
  std::vector<int64_t> shape = inputs[0].Shape();
  const std::string declared = ShapeText(shape) + " " + DataTypeText(inputs[0].DataType());
  if (inputs[0].DataType() != mindspore::DataType::kNumberTypeFloat32 || shape.size() != 4 ||
      (shape[0] != 1 && shape[0] >= 0) || shape[1] != 1) {
    return Fail("model " + opts.mindir_path + " has input " + declared +
                ", expected float32 [1,1,H,W] (an SRCNN exported by export.py)");
  }
  const bool dynamic = shape[0] < 0 || shape[2] < 0 || shape[3] < 0;
  if (opts.has_input_shape) {
    const std::vector<int64_t> wanted = {1, 1, opts.input_height, opts.input_width};
    for (size_t i = 2; i < 4; ++i) {
      if (shape[i] >= 0 && shape[i] != wanted[i]) {
        return Fail("model " + opts.mindir_path + " has the fixed input " + declared + " but --input_shape is " +
                    std::to_string(opts.input_height) + "," + std::to_string(opts.input_width));
      }
    }
    if (dynamic) {
      const mindspore::Status resize_status = model.Resize(inputs, {wanted});
      if (resize_status != mindspore::kSuccess) {
        return Fail("cannot resize the input of model " + opts.mindir_path + " to " + ShapeText(wanted) + ": " +
                    StatusText(resize_status));
      }
      inputs = model.GetInputs();
      shape = inputs[0].Shape();
    }
  } else if (dynamic) {
    return Fail("model " + opts.mindir_path + " has the dynamic input " + declared +
                ": give its size as --input_shape=H,W (the size of the input .bin files)");
  }
  mindspore::MSTensor &input = inputs[0];
  const size_t input_size = input.DataSize();
  const std::string version = mindspore::Version();
  std::cout << "ascend310_infer/out/main: MindSpore Lite" << (version.empty() ? "" : " " + version)
            << " C++ harness, model "
            << opts.mindir_path << " (input " << declared << "), running " << ShapeText(shape) << " on "
            << srcnn_infer::DeviceName(opts.device) << ", " << files.size() << " input files" << std::endl;

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
    if (output.DataType() != mindspore::DataType::kNumberTypeFloat32 || output.DataSize() != input_size) {
      return Fail("model " + opts.mindir_path + " returned output " + ShapeText(output.Shape()) + " " +
                  DataTypeText(output.DataType()) + " for input " + ShapeText(input.Shape()) +
                  ", expected float32 of the input's shape");
    }
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
  // Lite logs through glog to stderr, reading GLOG_v when its library loads, before main: unless the
  // caller set GLOG_v (GLOG_v=2 shows Lite's warnings and errors), start again with Lite's log off so
  // that a failure is this program's one line.
  if (std::getenv("GLOG_v") == nullptr && argc > 0) {
    setenv("GLOG_v", "4", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then run with Lite's log on
  }
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
