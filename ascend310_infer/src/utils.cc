#include "utils.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace srcnn_infer {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

bool EndsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ParseDeviceId(const std::string &text, uint32_t *out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 9) {
    return false;
  }
  *out = static_cast<uint32_t>(std::strtoul(text.c_str(), nullptr, 10));
  return true;
}

// "H,W" with two positive integers below 2^20.
bool ParseShape(const std::string &text, int64_t *height, int64_t *width) {
  const size_t comma = text.find(',');
  if (comma == std::string::npos) {
    return false;
  }
  const std::string parts[2] = {text.substr(0, comma), text.substr(comma + 1)};
  int64_t values[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    if (parts[i].empty() || parts[i].size() > 7 || parts[i].find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    values[i] = std::strtoll(parts[i].c_str(), nullptr, 10);
    if (values[i] <= 0 || values[i] >= (1 << 20)) {
      return false;
    }
  }
  *height = values[0];
  *width = values[1];
  return true;
}

}  // namespace

std::string Usage(const std::string &prog) {
  std::ostringstream os;
  os << "Usage: " << prog
     << " --mindir_path=FILE --input_path=DIR [--result_path=DIR]"
        " [--device_type=Ascend|CPU] [--device_id=N] [--input_shape=H,W]\n"
        "\n"
        "Runs a MINDIR model with MindSpore Lite on every *.bin file of DIR (sorted by name).\n"
        "The model's input 0 must be float32 [1,1,H,W]. Each file holds the input tensor of\n"
        "one image and must have exactly the byte size of the model input; output 0 is\n"
        "written to RESULT/<name>_0.bin.\n"
        "\n"
        "  --mindir_path=FILE   MINDIR model to run (required)\n"
        "  --input_path=DIR     folder of input .bin files (required)\n"
        "  --result_path=DIR    folder for the output .bin files, created if missing\n"
        "                       (default ./result_Files)\n"
        "  --device_type=TYPE   Ascend or CPU (default Ascend)\n"
        "  --device_id=N        Ascend device id (default 0)\n"
        "  --input_shape=H,W    input size for a model with a dynamic input (required then;\n"
        "                       with a fixed input it must match)\n"
        "  --help               print this help and exit\n";
  return os.str();
}

bool ParseArgs(int argc, const char *const argv[], Options *opts, std::string *error) {
  static const char *const kValueFlags[] = {"mindir_path", "input_path", "result_path", "device_type",
                                            "device_id", "input_shape"};
  bool seen_mindir = false;
  bool seen_input = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      opts->help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 && arg.rfind("-", 0) == 0 && arg.size() > 1) {
      arg = "-" + arg;  // accept gflags-style single dash
    }
    if (arg.rfind("--", 0) != 0) {
      *error = "unexpected argument '" + arg + "' (flags look like --name=value)";
      return false;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const bool known = std::find_if(std::begin(kValueFlags), std::end(kValueFlags),
                                    [&name](const char *f) { return name == f; }) != std::end(kValueFlags);
    if (!known) {
      *error = "unknown flag --" + name + " (see --help)";
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        *error = "flag --" + name + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    if (name == "mindir_path") {
      opts->mindir_path = value;
      seen_mindir = true;
    } else if (name == "input_path") {
      opts->input_path = value;
      seen_input = true;
    } else if (name == "result_path") {
      if (value.empty()) {
        *error = "--result_path must not be empty";
        return false;
      }
      opts->result_path = value;
    } else if (name == "device_type") {
      const std::string lower = Lower(value);
      if (lower == "ascend" || lower == "ascend310" || lower == "ascend310p") {
        opts->device = DeviceKind::kAscend;
      } else if (lower == "cpu") {
        opts->device = DeviceKind::kCPU;
      } else {
        *error = "--device_type must be Ascend or CPU, got '" + value + "'";
        return false;
      }
    } else if (name == "input_shape") {
      if (!ParseShape(value, &opts->input_height, &opts->input_width)) {
        *error = "--input_shape must be H,W with two positive integers, got '" + value + "'";
        return false;
      }
      opts->has_input_shape = true;
    } else if (name == "device_id") {
      if (!ParseDeviceId(value, &opts->device_id)) {
        *error = "--device_id must be a non-negative integer, got '" + value + "'";
        return false;
      }
    }
  }
  if (opts->help) {
    return true;
  }
  if (!seen_mindir || opts->mindir_path.empty()) {
    *error = "--mindir_path is required (see --help)";
    return false;
  }
  if (!seen_input || opts->input_path.empty()) {
    *error = "--input_path is required (see --help)";
    return false;
  }
  return true;
}

const char *DeviceName(DeviceKind device) { return device == DeviceKind::kCPU ? "CPU" : "Ascend"; }

bool ListBinFiles(const std::string &dir, std::vector<std::string> *files, std::string *error) {
  DIR *d = opendir(dir.c_str());
  if (d == nullptr) {
    *error = "cannot open input folder " + dir + ": " + ErrnoText();
    return false;
  }
  files->clear();
  for (struct dirent *entry = readdir(d); entry != nullptr; entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name.size() > 4 && EndsWith(name, ".bin") && IsRegularFile(JoinPath(dir, name))) {
      files->push_back(JoinPath(dir, name));
    }
  }
  closedir(d);
  std::sort(files->begin(), files->end());
  return true;
}

bool ReadBinaryFile(const std::string &path, std::vector<char> *data, std::string *error) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    *error = "cannot open " + path + ": " + ErrnoText();
    return false;
  }
  const std::streamoff size = in.tellg();
  if (size < 0) {
    *error = "cannot get the size of " + path;
    return false;
  }
  data->resize(static_cast<size_t>(size));
  in.seekg(0, std::ios::beg);
  if (size > 0 && !in.read(data->data(), static_cast<std::streamsize>(size))) {
    *error = "cannot read " + path;
    return false;
  }
  return true;
}

bool WriteBinaryFile(const std::string &path, const void *data, size_t size, std::string *error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    *error = "cannot create " + path + ": " + ErrnoText();
    return false;
  }
  out.write(static_cast<const char *>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    *error = "cannot write " + path;
    return false;
  }
  return true;
}

bool MakeDirs(const std::string &dir, std::string *error) {
  if (IsDirectory(dir)) {
    return true;
  }
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    const std::string part = dir.substr(0, pos);
    if (part.empty() || IsDirectory(part)) {
      continue;
    }
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      *error = "cannot create folder " + part + ": " + ErrnoText();
      return false;
    }
  }
  if (!IsDirectory(dir)) {
    *error = "result path " + dir + " exists and is not a folder";
    return false;
  }
  return true;
}

bool CheckWritable(const std::string &dir, std::string *error) {
  // Try it: access() says yes to root on a read-only mount, and a late failure would leave half the outputs.
  const std::string probe = JoinPath(dir, ".main_write_check");
  FILE *file = std::fopen(probe.c_str(), "wb");
  if (file == nullptr) {
    *error = "result folder " + dir + " is not writable: " + ErrnoText();
    return false;
  }
  std::fclose(file);
  std::remove(probe.c_str());
  return true;
}

bool IsRegularFile(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string FileStem(const std::string &path) {
  const size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = name.find_last_of('.');
  if (dot != std::string::npos && dot > 0) {
    name = name.substr(0, dot);
  }
  return name;
}

std::string JoinPath(const std::string &dir, const std::string &name) {
  if (dir.empty()) {
    return name;
  }
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string OneLine(const std::string &text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (const char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) {
      out.push_back(' ');
      space = false;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace srcnn_infer
