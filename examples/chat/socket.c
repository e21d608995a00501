/* The WebSocket half: not in this build yet (it waits for websocket.h). */
#include "chat.h"

bool chat_websocket_enabled(void)
{
    return false;
}

const gust_handler_class *chat_websocket_class(void)
{
    return NULL;
}

void chat_websocket_close_all(void)
{
}
