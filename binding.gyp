{
  "targets": [
    {
      "target_name": "sealtrail_hash",
      "sources": ["native/sealtrail_hash.c"],
      "cflags": ["-O2", "-Wno-deprecated-declarations"],
      "xcode_settings": { "OTHER_CFLAGS": ["-Wno-deprecated-declarations"] }
    }
  ]
}
