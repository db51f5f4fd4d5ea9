{
  "targets": [
    {
      "target_name": "branchynet_onednn",
      "sources": ["native/onednn.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fopenmp", "-ffp-contract=off", "-fno-math-errno"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl"]
    }
  ]
}
