#include "chat_templates.h"

namespace lrgd::model {

std::string default_chat_template(const std::string& arch) {
  if (arch == "qwen2") {  // ChatML
    return "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
           "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif "
           "%}";
  }
  if (arch == "phi3") {
    return "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + "
           "'<|end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
  }
  if (arch == "mistral") {
    return "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
           "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
           "eos_token }}{% else %}{{ message['content'] + '\\n\\n' }}{% endif %}{% endfor %}";
  }
  // Llama-3 instruct.
  return "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
         "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
         "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% "
         "endif %}";
}

}  // namespace lrgd::model
